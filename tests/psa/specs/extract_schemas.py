"""Re-extract the vendor schemas the contract tests use from a vendor's full OpenAPI document.

    python tests/psa/specs/extract_schemas.py FULL_SPEC.json OUT.json SCHEMA [SCHEMA ...] \
        --source "owner/repo path@commit"

Writes an OpenAPI 3 document holding only ``components.schemas``: the named schemas and every
schema they reference, transitively (so the validator resolves each ``$ref``). A ``$ref`` whose
target the full document lacks is left as it is (``tests/psa/contract.py`` accepts anything
there). The source, the vendor's version and the schemas asked for are recorded under
``info.x-extracted`` so that the next engineer can refresh the file the same way. See
``README.md`` beside this file for where each file came from.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

_REF = re.compile(r'"#/components/schemas/([^"]+)"')


def referenced(schema: Any) -> set[str]:
    return set(_REF.findall(json.dumps(schema)))


def extract(spec: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The named schemas and their transitive references, in the document's own order."""
    schemas = spec["components"]["schemas"]
    missing = [n for n in names if n not in schemas]
    if missing:
        raise SystemExit(f"not in the document: {', '.join(missing)}")
    keep: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in keep or name not in schemas:
            continue
        keep.add(name)
        todo.extend(referenced(schemas[name]) - keep)
    return {name: schema for name, schema in schemas.items() if name in keep}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="the vendor's full OpenAPI document (JSON)")
    parser.add_argument("out", type=Path)
    parser.add_argument("schemas", nargs="+", help="schema names under components.schemas")
    parser.add_argument("--source", required=True, help="where the full document came from")
    args = parser.parse_args(argv)

    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    kept = extract(spec, args.schemas)
    info = spec.get("info", {})
    out = {
        "openapi": spec.get("openapi", "3.0.1"),
        "info": {
            "title": info.get("title", ""),
            "version": info.get("version", ""),
            "x-extracted": {
                "source": args.source,
                "schemas": args.schemas,
                "with-references": len(kept) - len(args.schemas),
            },
        },
        "components": {"schemas": kept},
    }
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(kept)} schemas", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
