"""Reading an ODCS v3 contract into a provider config (the mapping of `standards.odcs`)."""

from __future__ import annotations

import math
import re
import string
from typing import Any

from pydantic import ValidationError

TYPES = {
    "string": "string",
    "integer": "int64",
    "number": "float64",
    "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp",
}
LOGICAL = {ours: theirs for theirs, ours in TYPES.items()}
_FITS = {"integer": {"i8", "i16", "i32", "i64", "u8", "u16", "u32"}, "number": {"f32", "f64"}}
_COLUMN_METRICS = ("nullValues", "duplicateValues", "invalidValues")
_JDK = {"yyyy": "%Y", "uuuu": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
# customProperties names -> config fields, per level
PROVIDER_PROPS = {"jurisdiction": "jurisdiction", "publisherType": "type"}
DATASET_PROPS = {
    "importantData": "important_data",
    "schemaDrift": "schema_drift",
    "nullValues": "null_values",
    "read": "read",
    "ingestLimits": "limits",
    "freshness": "freshness",
}
COLUMN_PROPS = {
    "personalData": "personal_data",
    "trueValues": "true_values",
    "falseValues": "false_values",
    "formats": "formats",
    "minValue": "min_value",
    "maxValue": "max_value",
}
# Keys that say nothing a drop must satisfy (documentation), per level; others not read: refused.
_INFO_OBJECT = {"id", "physicalType", "physicalName", "businessName", "authoritativeDefinitions"}
_INFO_OBJECT |= {"tags", "dataGranularityDescription", "logicalType"}
_INFO_PROPERTY = {"id", "businessName", "description", "authoritativeDefinitions", "tags"}
_INFO_PROPERTY |= {"physicalType", "classification", "examples", "criticalDataElement"}
_INFO_PROPERTY |= {"partitioned", "partitionKeyPosition", "encryptedName", "transformLogic"}
_INFO_PROPERTY |= {"transformSourceObjects", "transformDescription", "primaryKeyPosition"}
_INFO_RULE = {"id", "name", "description", "dimension", "method", "businessImpact", "schedule"}
_INFO_RULE |= {"scheduler", "tags", "authoritativeDefinitions", "customProperties", "unit", "type"}


class ContractReader:
    """One contract being converted: its problems, and the contract path of each config key."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.origin: dict[tuple[str | int, ...], str] = {}

    def refuse(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def put(
        self, target: dict[str, Any], loc: tuple[str | int, ...], value: Any, where: str
    ) -> None:
        """Set a config key (the last of `loc`) once; a second source of it is refused."""
        key = str(loc[-1])
        if key in target and target[key] != value:
            self.refuse(where, f"sets {key} again (already from {self.origin[loc]})")
            return
        target[key] = value
        self.origin.setdefault(loc, where)

    def pydantic_problems(self, exc: ValidationError) -> None:
        for err in exc.errors():
            loc = tuple(err["loc"])
            cut = next((n for n in range(len(loc), 0, -1) if loc[:n] in self.origin), 0)
            where = ".".join([self.origin[loc[:cut]]] if cut else [])
            rest = ".".join(str(p) for p in loc[cut:])
            self.refuse(".".join(p for p in (where, rest) if p) or "(top)", err["msg"])

    def provider(self, doc: dict[str, Any], provider_id: str) -> dict[str, Any]:
        if not str(doc["apiVersion"]).startswith("v3."):
            self.refuse("apiVersion", f"{doc['apiVersion']} is not ODCS v3")
        data: dict[str, Any] = {"id": provider_id}
        self.origin[("id",)] = "(file name)"
        if "name" in doc:
            self.put(data, ("name",), doc["name"], "name")
        else:
            self.refuse("name", "missing: the provider's name")
        self.custom(doc, "", (), data, PROVIDER_PROPS)
        if "jurisdiction" not in data:
            self.refuse("customProperties", "no `jurisdiction` entry (e.g. value: CN)")
        datasets: dict[str, Any] = {}
        for i, obj in enumerate(doc.get("schema", [])):
            where, name = f"schema.{i}", obj["name"]
            if name in datasets:
                self.refuse(f"{where}.name", f"dataset {name!r} defined twice")
                continue
            self.origin[("datasets", name)] = where
            self.origin[("datasets", name, "[key]")] = f"{where}.name"
            datasets[name] = self.dataset(obj, where, ("datasets", name))
        data["datasets"] = datasets
        self.origin[("datasets",)] = "schema"
        return data

    def dataset(
        self, obj: dict[str, Any], where: str, loc: tuple[str | int, ...]
    ) -> dict[str, Any]:
        self.unread(obj, where, _INFO_OBJECT | {"name", "description", "properties", "quality"})
        data: dict[str, Any] = {}
        if obj.get("description"):
            self.put(data, (*loc, "description"), obj["description"], f"{where}.description")
        props = obj.get("properties", [])
        data["columns"] = [
            self.column(p, f"{where}.properties.{j}", (*loc, "columns", j))
            for j, p in enumerate(props)
        ]
        self.origin[(*loc, "columns")] = f"{where}.properties"
        keyed = [
            (p.get("primaryKeyPosition", -1), j, p["name"])
            for j, p in enumerate(props)
            if p.get("primaryKey")
        ]
        positions = [pos for pos, _, _ in keyed if pos > 0]
        if len(positions) != len(set(positions)):
            self.refuse(f"{where}.properties", "two primary key columns share a position")
        if keyed:
            order = sorted(keyed, key=lambda k: (k[0] if k[0] > 0 else math.inf, k[1]))
            data["primary_key"] = [name for _, _, name in order]
            self.origin[(*loc, "primary_key")] = f"{where}.properties"
        for k, rule in enumerate(obj.get("quality", [])):
            self.dataset_rule(rule, f"{where}.quality.{k}", loc, data)
        self.custom(obj, where, loc, data, DATASET_PROPS)
        return data

    def column(
        self, prop: dict[str, Any], where: str, loc: tuple[str | int, ...]
    ) -> dict[str, Any]:
        used = {"name", "logicalType", "logicalTypeOptions", "required", "unique", "primaryKey"}
        self.unread(prop, where, _INFO_PROPERTY | used | {"physicalName", "quality"})
        col: dict[str, Any] = {}
        self.put(col, (*loc, "name"), prop["name"], f"{where}.name")
        if prop.get("physicalName", prop["name"]) != prop["name"]:
            self.refuse(f"{where}.physicalName", "differs from name: a drop's column has one name")
        logical = prop.get("logicalType", "string")
        if logical not in TYPES:
            self.refuse(f"{where}.logicalType", f"{logical!r} has no column type: {sorted(TYPES)}")
            return col
        self.put(col, (*loc, "type"), TYPES[logical], f"{where}.logicalType")
        for key, value in prop.get("logicalTypeOptions", {}).items():
            self.type_option(logical, key, value, f"{where}.logicalTypeOptions.{key}", loc, col)
        if prop.get("required"):
            self.put(col, (*loc, "nullable"), False, f"{where}.required")
        if prop.get("unique"):
            self.put(col, (*loc, "unique"), True, f"{where}.unique")
        for k, rule in enumerate(prop.get("quality", [])):
            self.column_rule(rule, f"{where}.quality.{k}", loc, col)
        self.custom(prop, where, loc, col, COLUMN_PROPS)
        return col

    def type_option(
        self, logical: str, key: str, value: Any, where: str, loc: tuple[str | int, ...], col: dict
    ) -> None:
        if key == "pattern":
            self.put(col, (*loc, "pattern"), value, where)
        elif key in ("minimum", "maximum") and logical in _FITS:
            self.put(col, (*loc, f"{key[:3]}_value"), value, where)
        elif key == "format" and logical in _FITS:
            if value not in _FITS[logical]:
                self.refuse(where, f"{value!r} does not fit {TYPES[logical]}")
        elif key == "format" and logical in ("date", "timestamp"):
            if (layout := strftime_layout(str(value))) is None:
                self.refuse(where, f"{value!r}: use yyyy MM dd HH mm ss and quoted text only")
            else:
                self.put(col, (*loc, "formats"), [layout], where)
        else:
            self.refuse(where, f"not supported on logicalType {logical}")

    def column_rule(
        self, rule: dict[str, Any], where: str, loc: tuple[str | int, ...], col: dict
    ) -> None:
        if rule.get("type") == "custom":
            self.refuse(f"{where}.type", "a custom rule belongs on the schema object")
            return
        if not self.enforced(rule, where):
            return
        metric, args, zero = rule.get("metric"), rule.get("arguments", {}), rule.get("mustBe")
        if type(zero) not in (int, float) or zero != 0 or metric not in _COLUMN_METRICS:
            self.refuse(where, f"a column rule must be one of {_COLUMN_METRICS} with mustBe: 0")
            return
        self.unread(rule, where, _INFO_RULE | {"metric", "mustBe", "severity", "arguments"})
        allowed = {"validValues", "pattern"} if metric == "invalidValues" else set()
        self.unread(args, f"{where}.arguments", allowed)
        if metric == "nullValues":
            self.put(col, (*loc, "nullable"), False, where)
        elif metric == "duplicateValues":
            self.put(col, (*loc, "unique"), True, where)
        elif not args:
            self.refuse(f"{where}.arguments", "invalidValues needs validValues or pattern")
        if metric == "invalidValues" and "validValues" in args:
            self.put(col, (*loc, "allowed_values"), args["validValues"], f"{where}.arguments")
        if metric == "invalidValues" and "pattern" in args:
            self.put(col, (*loc, "pattern"), args["pattern"], f"{where}.arguments.pattern")

    def dataset_rule(
        self, rule: dict[str, Any], where: str, loc: tuple[str | int, ...], data: dict
    ) -> None:
        if rule.get("type") == "custom":
            self.expectation(rule, where, loc, data)
        elif not self.enforced(rule, where):
            return
        elif rule.get("metric") != "rowCount" or "arguments" in rule:
            self.refuse(where, "a schema rule must be rowCount or a greatExpectations custom rule")
        elif (bounds := _row_bounds(rule)) is None:
            self.refuse(
                where, "rowCount needs mustBe, mustBeGreater*, mustBeLess* or mustBeBetween"
            )
        else:
            for key, value in zip(("min_rows", "max_rows"), bounds, strict=True):
                if value is not None:
                    self.put(data, (*loc, key), value, where)

    def enforced(self, rule: dict[str, Any], where: str) -> bool:
        """False for a prose rule; a rule databourse cannot run, or not as an error, refused."""
        kind = rule.get("type", "library")
        if kind == "text":
            return False
        if kind != "library":
            self.refuse(f"{where}.type", f"{kind!r} rules cannot be run by databourse")
            return False
        if str(rule.get("severity", "error")).lower() != "error":
            self.refuse(
                f"{where}.severity",
                "contract checks are errors; for a warning write a "
                "greatExpectations custom rule with severity: warning",
            )
            return False
        return True

    def expectation(
        self, rule: dict[str, Any], where: str, loc: tuple[str | int, ...], data: dict
    ) -> None:
        impl = rule["implementation"]
        if re.sub(r"[^a-z]", "", str(rule["engine"]).lower()) != "greatexpectations":
            self.refuse(f"{where}.engine", f"{rule['engine']!r}: only greatExpectations runs here")
        elif not isinstance(impl, dict) or set(impl) - {"expectation", "kwargs"}:
            self.refuse(f"{where}.implementation", "must be {expectation: <GX class>, kwargs: {}}")
        else:
            expectations = data.setdefault("expectations", [])
            at = (*loc, "expectations", len(expectations))
            self.origin[at] = f"{where}.implementation"
            self.origin[(*at, "severity")] = f"{where}.severity"
            expectations.append({**impl, "severity": rule.get("severity", "error")})

    def custom(
        self,
        item: dict[str, Any],
        where: str,
        loc: tuple[str | int, ...],
        target: dict,
        names: dict[str, str],
    ) -> None:
        """The customProperties of `item` that are config keys (named in `names`)."""
        prefix = f"{where}." if where else ""
        seen: set[str] = set()
        for n, entry in enumerate(item.get("customProperties", [])):
            name, at = entry["property"], f"{prefix}customProperties.{n}"
            if name in seen:
                self.refuse(f"{at}.property", f"{name!r} given twice")
            elif name in names:
                self.put(target, (*loc, names[name]), entry["value"], f"{at}.value")
            seen.add(name)

    def unread(self, item: dict[str, Any], where: str, known: set[str]) -> None:
        """Refuse the keys of `item` that are neither read nor documentation."""
        prefix = f"{where}." if where else ""
        for key in sorted(set(item) - known - {"customProperties"}):
            self.refuse(f"{prefix}{key}", "not supported by databourse (cannot be enforced)")


def _row_bounds(rule: dict[str, Any]) -> tuple[int | None, int | None] | None:
    """min_rows, max_rows from a rowCount rule's operator; None for an unusable operator."""
    if "mustBe" in rule and isinstance(rule["mustBe"], int | float):
        return math.ceil(rule["mustBe"]), math.floor(rule["mustBe"])
    if "mustBeGreaterOrEqualTo" in rule:
        return math.ceil(rule["mustBeGreaterOrEqualTo"]), None
    if "mustBeGreaterThan" in rule:
        return math.floor(rule["mustBeGreaterThan"]) + 1, None
    if "mustBeLessOrEqualTo" in rule:
        return None, math.floor(rule["mustBeLessOrEqualTo"])
    if "mustBeLessThan" in rule:
        return None, math.ceil(rule["mustBeLessThan"]) - 1
    if "mustBeBetween" in rule:  # "equivalent to mustBeGreaterThan and mustBeLessThan"
        low, high = rule["mustBeBetween"]
        return math.floor(low) + 1, math.ceil(high) - 1
    return None


def strftime_layout(jdk: str) -> str | None:
    """A JDK DateTimeFormatter pattern (yyyy, MM, dd, HH, mm, ss, quoted text) as a strftime
    layout; None when it uses anything else."""
    out, i = [], 0
    while i < len(jdk):
        ch = jdk[i]
        if ch == "'":  # quoted text; '' is a quote, inside quotes or out
            end = i + 1
            while (end := jdk.find("'", end)) >= 0 and jdk.startswith("''", end) and end > i + 1:
                end += 2
            if end < 0:
                return None
            out.append((jdk[i + 1 : end].replace("''", "'") or "'").replace("%", "%%"))
            i = end + 1
        elif ch in string.ascii_letters:
            run = re.match(rf"{ch}+", jdk[i:])
            token = run.group(0) if run else ch
            if token not in _JDK:
                return None
            out.append(_JDK[token])
            i += len(token)
        else:
            out.append("%%" if ch == "%" else ch)
            i += 1
    return "".join(out)
