"""Personal data: validators of identifiers, the column scan and its gates, and personal data
inside running text (segments, mentions, spans, redaction).

Modules:
    addresses
        Postal addresses in table cells, by the structure address formats share (vectorised).
    cards
        Payment card numbers: the issuers' ranges and lengths (ISO/IEC 7812) and the Luhn check.
    categories
        The categories of personal data in priority order, and the category of each whole value.
    counts
        Additive counts of a column's values by category, and the scan of one batch's column.
    detect
        Content-based personal-data detection: classify columns by the identifiers their values
        hold.
    digits
        Digit matrices and check-digit schemes, vectorized over many equal-length candidates.
    dirty_columns
        Messy columns: a category most non-empty values hold, beside typos, placeholders and strays.
    emails
        Email addresses as RFC 5321/5322 and internationalized mail (RFC 6531) allow them
        (vectorised).
    embedded
        What the scan finds inside longer text: identifiers in digit runs, glued or separated.
    findings
        What one column holds (`ColumnFinding`), decided from its counts by the column-level rules.
    identifiers
        Vectorized validators of personal identifiers (shape, checksum, date, phone metadata).
    identifiers_intl
        Identifiers of the exchange's next markets, vectorized: national ids, device ids, profile
        URLs.
    name_lists
        Name statistics the person-name check looks tokens up in, loaded once, as sorted word lists.
    numbers
        Identifiers typed as numbers: a reader that makes 0812345678 the integer 812345678.
    overlaps
        Values valid for several categories of one shape, counted for the one their column holds.
    patterns
        Validators for pattern and dictionary categories: names, addresses, plates, passports, more.
    person_names
        Person names in table cells: token structure, checked against name statistics (vectorised).
    phones
        Phone numbers as people write them, validated against phonenumbers' metadata, vectorized.
    pseudonym_tokens
        Keyed pseudonym tokens in running text (`text_spans.pseudonym_token`), counted per category.
    scan_text
        Text as the personal-data scan reads it: what a reader sees, not how it was typed.
    screening
        Gates over PII findings: undeclared personal data in a dataset, identifiers left in a
        product.
    serials
        Columns of serial numbers (order, invoice, tracking numbers) whose digits pass as phones.
    text_mentions
        Names and addresses mentioned inside running text (English, Malay, Chinese), vectorised.
    text_redact
        Personal data inside running text replaced by typed placeholders, and what is left after.
    text_segments
        Running text cut into the pieces the name and address detectors read: lines, then windows.
    text_spans
        Identifiers inside free text, found as spans and replaced by typed placeholders.
"""
