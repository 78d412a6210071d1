"""Postal addresses in table cells, by the structure address formats share (vectorised).

An address is a number placed as a house, unit or postal code is placed, next to the words that
name a street, unit or administrative area: "083 Crosby Plaza Apt. 533", "Blk 123 Ang Mo Kio Ave 3
#12-34", "No. 12, Jalan SS 2/24, Petaling Jaya" (no postcode), "Flat 12B, 23/F, ...", "Jl. Veteran
No. 6", "08, Sarma Ganj, Begusarai-533740", "80/883 Điện Biên Phủ phường An Phú", Chinese script
in either form ("478 橫山成功街2號9樓", "湖北省凯县花溪王街g座"), Thai ("67 หมู่ 92 ถ.แจ้งสว่าง").
A city, a street name without a number or a sentence without one is not an address. The
vocabularies are structure (street types, unit words, administrative levels), not place lists.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.digits import Mask


def _alt(words: str) -> str:
    return "|".join(sorted(words.split(), key=len, reverse=True))


MAX_LENGTH = 200  # longer text is free text: addresses in it are counted as embedded
# Street types written after the street's name (USPS Publication 28 suffixes, UK and SG forms).
STREET_AFTER = (
    "street st streets road rd roads avenue ave av lane ln drive dr drives boulevard blvd way "
    "ways court ct courts place pl circle cir circles crescent cres close terrace tce highway hwy "
    "parkway pkwy square sq plaza trail path row walk walks alley ally bypass causeway center "
    "centre corner corners crossing crest curve expressway freeway gardens gateway glen grove "
    "harbor harbors heights hill hills island isle junction junctions key knoll landing light "
    "loop manor meadow meadows mews mill mills mission motorway mount mountain neck orchard oval "
    "overpass park parkway pass passage pike pine pines plain plains point port ports radial "
    "ramp ranch rapid rapids rest ridge ridges river run shoal shore shores skyway spring springs "
    "spur station stravenue stream summit throughway trace track trafficway tunnel turnpike "
    "underpass union unions valley valleys viaduct view views village ville vista wall well "
    "wells brook brooks burg burgs canyon cape cliff cliffs club common commons cove coves creek "
    "dale dam divide estate estates extension falls ferry field fields flat flats ford fords "
    "forest forge forges fork forks fort green greens harbour haven hollow inlet lake lakes land "
    "lodge lock locks marg ganj nagar chowk ring central via course crossroad prairie trailer "
    "islands garden bridge camp bluff bluffs bottom branch cliff mall loaf fall rue route annex "
    "arcade bayou bend"
)
# Street types and places written before the name: Malay, Indonesian, Vietnamese.
STREET_BEFORE = (
    "jalan jln jl lorong lrg gang gg persiaran lebuh lebuhraya lengkok medan "
    "đường phố ngõ ngách hẻm"
)
# Unit, building and delivery words followed by their number.
UNIT = (
    "apt apartment suite ste unit flat floor fl room rm block blk bldg building studio level lot "
    "no nos h.no house tower box psc cmr tingkat aras lantai rt rw số"
)
# Administrative levels that appear with a number in Vietnamese and Indian addresses.
AREA_WORDS = "phường quận huyện xã thị&trấn thành&phố tỉnh khóm ấp thôn tổ kecamatan kelurahan desa"
_DIGIT_WORD = r"\d+[A-Za-z]?(?:[-/](?:\d+[A-Za-z]?|[A-Za-z]))*"
_GAP = r"(?:^|[\s,(])"
_END = r"(?:$|[\s,.)])"
LATIN_PATTERNS: tuple[str, ...] = (
    # 083 Crosby Plaza, 10 Anson Road, 1000 Lujiazui Ring Road
    rf"(?i){_GAP}{_DIGIT_WORD},?\s+(?:[\p{{L}}\d'.-]+\s+){{1,4}}(?:{_alt(STREET_AFTER)})s?\.?{_END}",
    # Jalan Ampang 12 / Jl. Veteran No. 6 / Lorong Bukit 3 / Đường số 86
    rf"(?i){_GAP}(?:{_alt(STREET_BEFORE)})\.?\s+(?:[\p{{L}}'./-]+\s+){{0,5}}(?:no\.?\s*)?{_DIGIT_WORD}{_END}",
    # Apt. 533, Blk 123, Flat 12B, No. 7, Room 1203, PSC 1241, Số 8/45
    rf"(?i){_GAP}(?:{_alt(UNIT).replace('.', r'[.]')})\.?\s*#?{_DIGIT_WORD}{_END}",
    r"#\d{1,3}-\d{1,5}|(?i:\b\d{1,3}/F\b)",  # SG unit #12-34, HK floor 23/F
    rf"(?i){_GAP}{_DIGIT_WORD},?\s+(?:{_alt(STREET_BEFORE)})\.?\s+\p{{L}}",  # 12 Jalan Ampang
    r"\s(?:APO|FPO|DPO)\s+A[AEP]\s+\d{5}$",  # US military mail: USS Potter, FPO AP 55920
    r"(?:^|\s)B\d{1,3}\s+L\d{1,3}\s",  # Philippine block and lot: B09 L66 Makiling Street
    # 08, Sarma Ganj, Begusarai-533740 / 92, Aurora, Allahabad 339075 (Indian PIN)
    r"^\d+[A-Za-z]?(?:/\d+)?,\s.+,\s[^,]+[ -]\d{6}$",
    # Vietnamese areas with a number anywhere
    r"(?i)(?:^|\s)(?:"
    + _alt(AREA_WORDS).replace("&", " ")
    + r")\s\S.*\d|\d.*(?:^|\s)(?:"
    + _alt(AREA_WORDS).replace("&", " ")
    + r")\s\S",
)
# A comma-separated value ending in a postal code (US state + ZIP, UK postcode, 5-6 digits).
_POSTAL_TAIL = (
    r"^[^,]+(?:,[^,]+){2,},?\s*(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
    r"|[\p{L} ]+\s\d{5,6}|\d{4}\s[\p{L} ]+)$"  # ..., 7570 Davao Occidental (PH)
)
HAN_ADMIN = "省市区區县縣镇鎮乡鄉州旗"
HAN_STREET = "路街道巷弄"
HAN_PATTERNS: tuple[str, ...] = (
    # a street word followed by a number or a section: 成功街2號, 光明路1段, 彌敦道123號
    rf"\p{{Han}}[{HAN_STREET}]\s*(?:\d|[一二三四五六七八九十]+段)",
    # an area then a street, ending the value or with a number: 湖北省凯县花溪王街g座,
    # 北京市朝阳区建国路 (not 市场...知道 in text)
    rf"[{HAN_ADMIN}]\p{{Han}}{{1,14}}[{HAN_STREET}](?:$|\s|[^，。,.\s]{{0,6}}[\d号號座段])",
    # a number with its unit: 85號8樓, 12号楼, 3座
    r"\d+\s*[号號][之\d]|\d+\s*[号號]?[楼樓层層室]|[A-Za-z\d]座",
    # Japanese blocks and lots: 芝大門28丁目13番19号
    r"\d+丁目|\d+番地?\d*[号-]?|[都道府県]\p{Han}{1,8}[市区町村郡]\p{Han}{0,8}\d",
)
# Korean road-name and lot addresses: 테헤란10길 265-87, 삼성로 688, 양재천1가 353-9
KOREAN_PATTERN = (
    r"\p{Hangul}(?:로|길|가|동|리)\s?(?:지하\s?)?\d+(?:-\d+)?|(?:시|도|군|구)\s\p{Hangul}+\s?\d"
)
THAI_PATTERN = (
    r"\d.*(?:ถนน|ถ\.|ซอย|ซ\.|หมู่|ตำบล|ต\.|อำเภอ|อ\.|จังหวัด|จ\.|แขวง|เขต|กรุงเทพ)"
    r"|(?:ถนน|ถ\.|ซอย|ซ\.|หมู่|ตำบล|ต\.|อำเภอ|อ\.|จังหวัด|จ\.|แขวง|เขต)\S*.*\d"
)
# A value with this many lower-case words is a sentence that may hold an address, not one
# ("Please deliver to 688 Morrison Prairie before Friday": a mention, `text_mentions`).
SENTENCE_WORDS = 3
LOWER_CASE_PARTS = (  # lower-case words of addresses: Vietnamese areas, particles, "no."
    r"^(?:phường|quận|huyện|xã|thị|trấn|thành|phố|tỉnh|khóm|ấp|thôn|tổ|đường|số|hẻm|ngõ|ngách"
    r"|de|del|da|di|la|le|van|von|of|no\.?|jl\.?|jln\.?|gg\.?|h\.no\.?|st\.?|c/o|s/o|and)$"
)
# Prefilter (RE2): a number and a space or comma, or a Chinese street or unit character. Each
# value it lets through is checked against every category before this one: a looser one (any
# digit) made a column of UUIDs ten times slower to scan.
SHAPE = r"^[^\n]*(?:\d[^\n]*[ ,]|[ ,][^\n]*\d|[路街道巷弄号號座楼樓丁番]|\p{Hangul}\d)[^\n]*$"


def any_of(patterns: tuple[str, ...]) -> str:
    """One RE2 pattern for several: one compilation instead of one each (per call)."""
    return "|".join(f"(?:{p})" for p in patterns)


ANY_HAN = any_of(HAN_PATTERNS)
ANY_LATIN = any_of((*LATIN_PATTERNS, _POSTAL_TAIL))


def _hits(arr: pa.Array, pattern: str) -> Mask:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(False)


def address_mask(values: pa.Array) -> Mask:
    """Which values (trimmed) are postal addresses as a whole."""
    arr = pc.replace_substring_regex(values.cast(pa.large_string()), r"\s+", " ")
    out = np.zeros(len(arr), dtype=bool)
    short = pc.less_equal(pc.utf8_length(arr), MAX_LENGTH).to_numpy(False)
    tokens = pc.split_pattern(arr, " ")
    words = pc.list_value_length(tokens).to_numpy()
    han = _hits(arr, r"\p{Han}")
    thai = _hits(arr, r"\p{Thai}")
    hangul = _hits(arr, r"\p{Hangul}")
    latin = ~han & ~thai & ~hangul
    out[hangul & ~han] = _hits(arr.filter(pa.array(hangul & ~han)), KOREAN_PATTERN)
    for mask, pattern in ((han, ANY_HAN), (thai, THAI_PATTERN), (latin, ANY_LATIN)):
        rows = np.flatnonzero(mask)
        if len(rows):
            out[rows] = _hits(arr.take(pa.array(rows, pa.int64())), pattern)
    return out & short & (words <= 30) & (_sentence_words(tokens) < SENTENCE_WORDS)


def _sentence_words(tokens: pa.Array) -> np.ndarray:
    """Words of running text in each value: lower-case words other than an address's own."""
    flat = pc.list_flatten(tokens)
    parents = pc.list_parent_indices(tokens).to_numpy()
    lower = _hits(flat, r"^\p{Ll}") & ~_hits(flat, LOWER_CASE_PARTS)
    return np.bincount(parents[lower], minlength=len(tokens))
