#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into OUT/<target>/ from the project's real inputs:
every example record of the event contract (schemas/transaction-recorded/examples, in the
framing fuzz/fuzz_input.h reads),
the shipped and test rule files, and every expression in them.

usage: seeds.py OUT CONTRACT_DIR SOURCE_DIR
"""
import hashlib
import json
import pathlib
import re
import sys


def write(folder: pathlib.Path, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> None:
    out, events, source = (pathlib.Path(a) for a in sys.argv[1:4])
    examples = events / "examples"
    for line in (examples / "envelopes.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        head = "".join(f"{k}={v}\n" for k, v in record["headers"].items())
        write(out / "decode", (head + "\n" + record["value"]).encode() if head else record["value"].encode())
    write(out / "decode", (examples / "plain.json").read_bytes())

    rule_files = [source / "config" / "rules.yaml", *sorted((source / "tests" / "data").glob("*.yaml"))]
    expression = re.compile(r"\b(?:when|where):\s*(.+?)\s*(?:}\s*)?$")
    for path in rule_files:
        text = path.read_bytes()
        write(out / "rule_file", text)
        for line in text.decode().splitlines():
            match = expression.search(line)
            if match:
                write(out / "expression", match.group(1).strip("\"").encode())


if __name__ == "__main__":
    main()
