"""`make catalog FILE=products.csv [STAGE=name]`: load a catalog file into a stage's table.

    python -m deploy.catalog FILE                 the local stack (`make run`; MOTO_PORT)
    python -m deploy.catalog FILE --stage dev     a deployed (or emulated) stage's table
    python -m deploy.catalog FILE --check         validate only, touch no table

The file is CSV with a header: id,name,description,priceCents,stock,active
(and optionally image, stockShards). The whole file is validated first; any
bad row fails the command with its line number and nothing is written. Then
each product that differs from the table is written (product item and stock
shards in one transaction), and the command prints what it added, changed,
withdrew and left as it was. Products not in the file are not touched;
`active=false` withdraws one. `stock` is the count on hand: loading a file
sets it (restocking is writing the new count), see docs/OPERATIONS.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from chalicelib.catalog import MAX_STOCK_SHARDS, money
from chalicelib.domain import Product
from chalicelib.store.catalog import DynamoCatalog
from chalicelib.validation import PRODUCT_ID

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "catalog" / "products.csv"
IMAGES = ROOT / "static" / "img"
DEFAULT_IMAGE = "product.svg"
REQUIRED = ("id", "name", "description", "priceCents", "stock", "active")
OPTIONAL = ("image", "stockShards")
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")
MAX_PRICE_CENTS = 100_000_000  # a million dollars: anything above is a typo
MAX_STOCK = 10_000_000

Out = Callable[[str], None]


class CatalogFileError(ValueError):
    """The file cannot be loaded; `problems` lists every bad line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: nothing written, {len(problems)} problem(s):\n  "
                         + "\n  ".join(problems))


def _whole(text: str, name: str, minimum: int, maximum: int) -> int | str:
    """The integer in `text`, or what is wrong with it."""
    cleaned = text.strip()
    if not cleaned.isdigit() or not cleaned.isascii():
        return f"{name} must be a whole number >= {minimum}, not {text!r}"
    value = int(cleaned)
    if not minimum <= value <= maximum:
        return f"{name} must be between {minimum} and {maximum}, not {value}"
    return value


def _row(line: int, row: dict[str, str], images: set[str] | None) -> Product | list[str]:
    problems = [f"line {line}: missing {name}" for name in REQUIRED
                if not (row.get(name) or "").strip()]
    if problems:
        return problems
    product_id = row["id"].strip()
    if not PRODUCT_ID.match(product_id):
        problems.append(f"line {line}: id {product_id!r} must be lowercase letters, digits "
                        "and '-', at most 64 characters")
    price = _whole(row["priceCents"], "priceCents (integer cents)", 1, MAX_PRICE_CENTS)
    stock = _whole(row["stock"], "stock", 0, MAX_STOCK)
    shards = _whole(row.get("stockShards") or "1", "stockShards", 1, MAX_STOCK_SHARDS)
    for value in (price, stock, shards):
        if isinstance(value, str):
            problems.append(f"line {line}: {value}")
    active = row["active"].strip().lower()
    if active not in TRUE + FALSE:
        problems.append(f"line {line}: active must be true or false, not {row['active']!r}")
    image = (row.get("image") or "").strip() or DEFAULT_IMAGE
    if images is not None and image not in images:
        problems.append(f"line {line}: image {image!r} is not in static/img/")
    if problems:
        return problems
    assert isinstance(price, int) and isinstance(stock, int) and isinstance(shards, int)  # nosec B101
    return Product(product_id, row["name"].strip(), row["description"].strip(), price, image,
                   stock=stock, active=active in TRUE, stock_shards=shards, position=line)


def parse(text: str, path: str = "catalog", images: set[str] | None = None) -> list[Product]:
    """Every product of a catalog file; CatalogFileError listing every bad line."""
    reader = csv.DictReader(io.StringIO(text), restkey="\0extra")
    header = reader.fieldnames or []
    problems: list[str] = []
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    missing = [c for c in REQUIRED if c not in header]
    if unknown:
        problems.append(f"line 1: unknown column(s): {', '.join(unknown)} "
                        f"(columns: {', '.join(REQUIRED + OPTIONAL)})")
    if missing:
        problems.append(f"line 1: missing column(s): {', '.join(missing)}")
    if problems:
        raise CatalogFileError(path, problems)
    products: list[Product] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if "\0extra" in row:
            problems.append(f"line {line}: more cells than columns")
            continue
        parsed = _row(line, row, images)
        if isinstance(parsed, list):
            problems += parsed
            continue
        if parsed.id in first_line:
            problems.append(f"line {line}: duplicate id {parsed.id!r} "
                            f"(first on line {first_line[parsed.id]})")
            continue
        first_line[parsed.id] = line
        products.append(parsed)
    if not products and not problems:
        problems.append("line 2: the file has no products")
    if problems:
        raise CatalogFileError(path, problems)
    return products


def read_file(path: Path) -> list[Product]:
    images = {p.name for p in IMAGES.iterdir()} if IMAGES.is_dir() else None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogFileError(str(path), [f"cannot read it: {exc}"]) from exc
    return parse(text, str(path), images)


def seed() -> list[Product]:
    """The seed catalog (catalog/products.csv): what a fresh stack starts with."""
    return read_file(SEED_FILE)


def on_sale(products: list[Product]) -> list[Product]:
    """The products a shopper can buy now (benchmarks and load tests pick from these)."""
    return [p for p in products if p.active and p.stock > 0]


@dataclass
class Plan:
    added: list[Product] = field(default_factory=list)
    changed: list[tuple[Product, Product]] = field(default_factory=list)  # (old, new)
    withdrew: list[tuple[Product, Product]] = field(default_factory=list)
    unchanged: list[Product] = field(default_factory=list)


def _same(old: Product, new: Product) -> bool:
    return replace(old, in_carts=0) == replace(new, in_carts=0)


def plan(current: dict[str, Product], wanted: list[Product]) -> Plan:
    result = Plan()
    for product in wanted:
        old = current.get(product.id)
        if old is None:
            result.added.append(product)
        elif _same(old, product):
            result.unchanged.append(product)
        elif old.active and not product.active:
            result.withdrew.append((old, product))
        else:
            result.changed.append((old, product))
    return result


def differences(old: Product, new: Product) -> str:
    parts = []
    if old.price_cents != new.price_cents:
        parts.append(f"price {money(old.price_cents)} -> {money(new.price_cents)}")
    if old.stock != new.stock:
        parts.append(f"stock {old.stock} -> {new.stock}")
    if old.active != new.active:
        parts.append("back on sale" if new.active else "withdrawn")
    for name in ("name", "description", "image", "stock_shards", "position"):
        if getattr(old, name) != getattr(new, name):
            parts.append(name.replace("_", " "))
    return ", ".join(parts)


def apply(catalog: DynamoCatalog, products: list[Product], out: Out = print) -> Plan:
    """Write what differs from the table; print and return what was done."""
    current = {p.id: p for p in catalog.list_catalog(consistent=True)}
    result = plan(current, products)
    for product in result.added:
        catalog.upsert(product)
    for old, product in result.changed + result.withdrew:
        catalog.upsert(product, old_shards=old.stock_shards)
    for product in result.added:
        out(f"added      {product.id}: {product.name}, {money(product.price_cents)}, "
            f"stock {product.stock}" + ("" if product.active else " (withdrawn)"))
    for old, product in result.changed:
        out(f"changed    {product.id}: {differences(old, product)}")
    for old, product in result.withdrew:
        rest = differences(replace(old, active=False), product)
        out(f"withdrew   {product.id}: {product.name}" + (f" ({rest})" if rest else ""))
    out(f"{len(result.added)} added, {len(result.changed)} changed, {len(result.withdrew)} "
        f"withdrew, {len(result.unchanged)} unchanged; {len(current)} in the table before, "
        f"products not in the file untouched")
    return result


def _local_catalog(moto_port: int) -> tuple[DynamoCatalog, str]:
    import boto3

    from devstack.environment import moto_environment, table_name

    env = moto_environment(os.environ, f"http://127.0.0.1:{moto_port}")
    os.environ.clear()
    os.environ.update(env)
    name = table_name("local")
    return DynamoCatalog(boto3.client("dynamodb"), name), f"{name} (local stack, moto :{moto_port})"


def _stage_catalog(stage_name: str) -> tuple[DynamoCatalog, str]:
    from deploy import account as acct
    from deploy.settings import DeployError, load_stage
    from deploy.stack import CloudFormationStack

    stage = load_stage(stage_name)
    account = acct.connect()
    outputs = CloudFormationStack(account.client("cloudformation"), stage.stack_name,
                                  lambda _: None).outputs()
    if "TableName" not in outputs:
        raise DeployError(f"no deployed stack {stage.stack_name} in {account.region}")
    name = outputs["TableName"]
    return DynamoCatalog(account.client("dynamodb"), name), f"{name} (stage {stage.name})"


def main(argv: list[str] | None = None, out: Out = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.catalog", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--stage", help="a deployed stage (default: the local stack)")
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 8001)),
                        help="the local stack's moto server (default $MOTO_PORT or 8001)")
    parser.add_argument("--check", action="store_true", help="validate the file only")
    args = parser.parse_args(argv)
    try:
        products = read_file(args.file)
        if args.check:
            out(f"{args.file}: {len(products)} products, valid")
            return 0
        local = args.stage in (None, "", "local")
        catalog, where = (_local_catalog(args.moto_port) if local
                          else _stage_catalog(args.stage))
        out(f"==> {args.file}: {len(products)} products into {where}")
        apply(catalog, products, out)
    except CatalogFileError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # one line for the operator, not a traceback
        from deploy.cli import _explain

        print(f"catalog: {_explain(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
