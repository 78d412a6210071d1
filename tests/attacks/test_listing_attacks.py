"""Issue 15, adversary pass 3, rows 4 and 5: the public listing shows only what the trail backs.

Row 4: an insider with SQL access to the catalog opened a market (an `availability` row updated
or inserted as "available", no audited decision or approval); grants were refused, but
`bourse catalog export` listed the market as available in the DCAT JSON-LD and the HTML page.
Row 5: the listing objects in the store were not authenticated: a store writer could rewrite
them. Each is replayed through the real CLI on a real catalog database and store.
"""

from __future__ import annotations

import json
from typing import Any

from test_facts_and_grants import PRODUCT, World, gate, package, world
from test_trail_backed_grants import sql

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

DCAT = "catalog/dcat.jsonld"
PAGE = "catalog/index.html"
SEAL = "catalog/seal.json"


def export(w: World) -> Any:
    proc = w.cli("catalog", "export")
    assert proc.returncode == 0, proc.stderr
    return proc


def offered(w: World, version: str) -> list[str]:
    """The markets the exported DCAT JSON-LD offers `version` in."""
    doc = json.loads((w.store.root / DCAT).read_text())
    [dataset] = [d for d in doc["dcat:dataset"] if d["dct:identifier"] == f"{PRODUCT}@{version}"]
    return [place["dct:identifier"] for place in dataset["dct:spatial"]]


def verify_all(w: World) -> tuple[int, list[dict[str, Any]], dict[str, int]]:
    """`verify --all --json`: its exit code, its error findings and what it checked."""
    proc = w.cli("verify", "--all", "--json")
    report = json.loads(proc.stdout)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    return proc.returncode, errors, report["checked"]


def test_a_market_opened_with_sql_is_not_listed_as_available(world: World) -> None:
    """Row 4: MY updated to available, HK inserted as available: listed unverified, warned."""
    version = package(world)
    gate(world, version)  # CN available (domestic), MY and SG wait for an approval
    sql(
        world,
        "UPDATE availability SET status = 'available', "
        "detail = json_set(detail, '$.decision', 'allowed') WHERE market = 'MY'",
    )
    sql(
        world,
        "INSERT INTO availability (version_id, market, status, rule_id, detail, updated_at) "
        "SELECT version_id, 'HK', 'available', rule_id, detail, updated_at FROM availability "
        "WHERE market = 'CN'",
    )
    proc = export(world)
    warned = " ".join(proc.stderr.split())
    for market in ("HK", "MY"):
        assert (
            f"warning: {PRODUCT}@{version} market {market}: stored as available, not backed by "
            "the authenticated audit trail: listed as unverified"
        ) in warned, proc.stderr
    assert "CN: stored" not in warned

    assert offered(world, version) == ["CN"]
    page = (world.store.root / PAGE).read_text()
    assert 'class="available">CN: available' in page
    assert 'class="unverified">MY: unverified' in page
    assert 'class="unverified">HK: unverified' in page
    assert 'class="available">MY' not in page and 'class="available">HK' not in page

    [listed] = json.loads(world.cli("catalog", "list", "--json").stdout)
    assert listed["markets"] == ["CN"]
    shown = world.cli("catalog", "show", f"{PRODUCT}@{version}").stdout
    assert "MY: unverified" in shown and "stored as available" in shown


def test_a_version_published_with_sql_offers_nothing(world: World) -> None:
    """Row 4, by the version: decided while staged, then set published with SQL."""
    staged = package(world)
    world.catalog.set_availability(PRODUCT, staged, "CN", "available", "domestic")
    export(world)
    assert offered(world, staged) == []  # staged: offered nowhere
    sql(world, "UPDATE versions SET status = 'published' WHERE version = :v", v=staged)
    proc = export(world)
    assert offered(world, staged) == [], "offered on a publication the trail never recorded"
    assert f"{PRODUCT}@{staged} market CN: stored as available" in " ".join(proc.stderr.split())


def test_an_untampered_export_is_sealed_and_verifies(world: World) -> None:
    """The control: the export writes its seal last, and `verify --all` checks it (rc 0)."""
    version = package(world)
    gate(world, version)
    proc = export(world)
    assert "warning" not in proc.stderr, proc.stderr
    assert f"seal: {world.store.uri(SEAL)}" in proc.stdout
    seal = json.loads((world.store.root / SEAL).read_text())
    card = f"catalog/croissant/{PRODUCT}/{version}.json"  # the version's Croissant card
    assert set(seal["objects"]) == {DCAT, PAGE, card} and len(seal["mac"]) == 64
    code, errors, checked = verify_all(world)
    assert (code, errors) == (0, []), errors
    assert checked["listing_objects"] == 4  # the DCAT export, the page, the card, the seal


def test_a_rewritten_listing_fails_verify_naming_it(world: World) -> None:
    """Row 5: catalog/dcat.jsonld rewritten in the store to offer MY; then the page too."""
    version = package(world)
    gate(world, version)
    export(world)
    path = world.store.root / DCAT
    doc = json.loads(path.read_text())
    for dataset in doc["dcat:dataset"]:
        if dataset.get("dct:identifier") == f"{PRODUCT}@{version}":
            dataset["dct:spatial"].append({"@id": "urn:iso:std:iso:3166:-1:MY"})
    path.write_text(json.dumps(doc, indent=2))
    code, errors, _ = verify_all(world)
    assert code == 1
    assert [(f["kind"], f["key"]) for f in errors] == [("listing-tampered", DCAT)], errors
    assert "is not the sealed one" in errors[0]["message"]

    page = world.store.root / PAGE
    page.write_text(page.read_text().replace("MY: pending_approval", "MY: available"))
    _, errors, _ = verify_all(world)
    assert {(f["kind"], f["key"]) for f in errors} == {
        ("listing-tampered", DCAT),
        ("listing-tampered", PAGE),
    }
    export(world)  # a fresh export replaces both and seals them again
    code, errors, _ = verify_all(world)
    assert (code, errors) == (0, []), errors


def test_a_reforged_seal_or_a_planted_listing_fails_verify(world: World) -> None:
    """Row 5: the seal recomputed without the key; an extra listing object; the seal deleted."""
    version = package(world)
    gate(world, version)
    export(world)
    planted = world.store.root / "catalog" / "offers.html"
    planted.write_text(f"<p>{PRODUCT}@{version} available in MY</p>")
    _, errors, _ = verify_all(world)
    assert [(f["kind"], f["key"]) for f in errors] == [("listing-unsealed", "catalog/offers.html")]

    seal_path = world.store.root / SEAL
    seal = json.loads(seal_path.read_text())
    seal["objects"]["catalog/offers.html"] = {"sha256": "0" * 64, "bytes": 1}
    seal_path.write_text(json.dumps(seal))  # the MAC is left as it was: no key to remake it
    code, errors, _ = verify_all(world)
    assert code == 1 and [(f["kind"], f["key"]) for f in errors] == [("listing-tampered", SEAL)]

    seal_path.unlink()
    _, errors, _ = verify_all(world)
    assert {f["key"] for f in errors if f["kind"] == "listing-unsealed"} == {
        DCAT,
        PAGE,
        f"catalog/croissant/{PRODUCT}/{version}.json",
        "catalog/offers.html",
    }


def test_an_older_sealed_export_put_back_fails_verify(world: World) -> None:
    """Row 5, replayed: the export from before a withdrawal, seal and all, copied back."""
    version = package(world)
    gate(world, version)
    export(world)
    card = f"catalog/croissant/{PRODUCT}/{version}.json"
    older = {key: (world.store.root / key).read_bytes() for key in (DCAT, PAGE, card, SEAL)}
    assert offered(world, version) == ["CN"]
    world.catalog.withdraw_version(PRODUCT, version, "recall")
    export(world)
    assert offered(world, version) == []
    for key, data in older.items():
        (world.store.root / key).write_bytes(data)
    code, errors, _ = verify_all(world)
    assert code == 1
    assert [(f["kind"], f["key"]) for f in errors] == [("listing-stale", DCAT)], errors
    assert f"offers {PRODUCT}@{version} in CN" in errors[0]["message"]


def test_a_withdrawal_through_the_cli_takes_the_offer_off_the_listing(world: World) -> None:
    """`bourse catalog withdraw` exports the listing again: the public files never go on
    offering a withdrawn version, and `verify --all` stays clean without a manual export."""
    version = package(world)
    gate(world, version)
    export(world)
    assert offered(world, version) == ["CN"]
    proc = world.cli("catalog", "withdraw", f"{PRODUCT}@{version}", "--reason", "recall")
    assert proc.returncode == 0, proc.stderr
    assert "exported again" in proc.stdout
    assert offered(world, version) == []
    code, errors, _ = verify_all(world)
    assert (code, errors) == (0, [])


def test_an_export_behind_the_catalog_is_reported(world: World) -> None:
    """Issue 19: a version offered by the catalog but not by the export (it was made before)
    is a `listing-behind` warning of `verify --all`, gone after the next export."""
    first = package(world)
    gate(world, first)
    export(world)
    second = package(world, tag="v2")
    gate(world, second)  # CN available now, and not exported
    proc = world.cli("verify", "--all", "--json")
    behind = [f for f in json.loads(proc.stdout)["findings"] if f["kind"] == "listing-behind"]
    assert proc.returncode == 0 and [(f["severity"], f["key"]) for f in behind] == [
        ("warning", DCAT)
    ]
    assert f"does not offer {PRODUCT}@{second} in CN" in behind[0]["message"]
    export(world)
    proc = world.cli("verify", "--all", "--json")
    assert not [f for f in json.loads(proc.stdout)["findings"] if f["kind"] == "listing-behind"]


def test_exports_link_the_public_exchange_not_the_store(world: World) -> None:
    """Issue 19: with `catalog_export.public_base_url`, the file exports (DCAT, Croissant)
    link each version's page and card on the exchange; no store path is published."""
    settings = world.cfg.root / "configs" / "settings.yaml"
    text = settings.read_text()
    assert "  public_base_url: null" in text
    settings.write_text(
        text.replace("  public_base_url: null", "  public_base_url: https://x.example/ex")
    )
    version = package(world)
    gate(world, version)
    export(world)
    doc = json.loads((world.store.root / DCAT).read_text())
    [dataset] = [d for d in doc["dcat:dataset"] if d["dct:identifier"] == f"{PRODUCT}@{version}"]
    page = f"https://x.example/ex/products/{PRODUCT}/{version}"
    assert dataset["foaf:page"] == [{"@id": f"{page}/croissant.json", "@type": "foaf:Document"}]
    assert {d["dcat:accessURL"]["@id"] for d in dataset["dcat:distribution"]} == {page}
    card = (world.store.root / f"catalog/croissant/{PRODUCT}/{version}.json").read_text()
    for published in (json.dumps(doc), card):
        assert "file://" not in published and str(world.store.root) not in published
    assert page in card
