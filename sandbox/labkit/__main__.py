"""python3 sandbox/labkit --prefix P status|sweep|down: one lab prefix from the command line.
  status  what the ledger records and which processes run (JSON)
  sweep   removes leftovers of a dead lab of P (a live one is left alone)
  down    takes the lab of P down; each cleanup error is printed; exit 1 if there was any
Exit codes: 0 done, 1 cleanup errors or a live lab refused, 2 bad usage."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import labkit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--state-dir")
    ap.add_argument("cmd", choices=["status", "sweep", "down"])
    a = ap.parse_args()
    try:
        lab = labkit.Lab(a.prefix, a.state_dir, tool="labkit")
    except labkit.LabError as e:
        print(f"labkit: error: {e}", file=sys.stderr)
        return 2
    try:
        if a.cmd == "status":
            doc = lab.ledger.read()
            doc["running"] = lab.ledger.running()
            doc["processes"] = lab.ledger.processes()
            print(json.dumps(doc, indent=1))
        elif a.cmd == "sweep":
            if lab.is_live():
                raise labkit.LabError(f"lab {a.prefix} is up: use down")
            problems = lab.sweep()
            for p in problems:
                print(f"labkit: sweep: {p}", file=sys.stderr)
            return 1 if problems else 0
        else:
            lab.down()
    except labkit.LabError as e:
        print(f"labkit: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
