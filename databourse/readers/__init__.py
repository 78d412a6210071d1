"""Readers: any provider file as a stream of Arrow record batches, in bounded memory.

Modules:
    csv_stream
        Reader CSV layer: a text part's plan (delimiter, header, columns) and its streamed batches.
    decompress
        Reader byte layer: size caps, gzip and zip streams checked while they decompress.
    jsonl
        Reader record layer: JSON Lines files as Arrow batches (Parquet and xlsx: their own
        modules).
    locate
        Reader error path: where in a CSV part a failure is (data row, line), found by rereading it.
    parquet
        Reader of Parquet files: their own names and types, decoded within the caps of compressed
        input; a range of a file's rows read from the row groups that hold it.
    stream
        Readers: any provider file as a stream of Arrow record batches, in bounded memory.
    text
        Reader text layer: encoding detection, CSV dialect and header detection (streaming:
        csv_stream).
    xlsx
        Reader workbook layer: one visible Excel sheet as Arrow batches of text.
    zip
        Reader zip layer: one archive opened once, its members checked, counted and read within
        caps.
"""
