"""``nsctl diff A B``: what changed between two snapshots (or a snapshot and ``now``)."""
from __future__ import annotations

from ..documents.diff import document
from ..kernel.errors import NsctlError
from ..model import Snapshot
from ..query.diff import BY_ID, BY_PATH
from .args import command_parser
from .render import print_json, print_lines


class DiffTrouble(NsctlError):
    """Like diff(1): trouble is exit status 2, differences 1."""

    exit_status = 2


def _load(source: str) -> Snapshot:
    if source == "now":
        from ..discovery import discover

        return discover()
    from ..documents.snapshot import load

    try:
        return load(source)
    except NsctlError as exc:
        raise DiffTrouble(str(exc)) from None


def _ref_text(ref: dict) -> str:
    kind = ref["kind"]
    where = {"process": f"pid {ref.get('pid')} via {ref.get('link')}",
             "thread": f"tid {ref.get('tid')} of pid {ref.get('pid')}",
             "fd": f"fd {ref.get('fd')} of pid {ref.get('pid')}",
             "socket": f"socket:[{ref.get('socket')}] of pid {ref.get('pid')}",
             "bindmount": f"{ref.get('path')}",
             "child": f"{ref.get('relation')} of {ref.get('child_key', ref.get('child'))}"}
    return f"{kind} {where.get(kind, '')}".strip()


def _label(d: dict, by: str) -> str:
    name = f"{d['type']}:[{d['ns']}]"
    return f"{d['key']} ({name})" if by == BY_PATH else f"{name} id {d['key']}"


def main(argv: list[str]) -> int:
    p = command_parser(
        prog="nsctl diff",
        description="Compare two snapshots (files from nsctl snapshot, or 'now' for the live "
                    "host). Exit status 0 if they are the same, 1 if they differ, 2 on trouble.")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--by", choices=(BY_ID, BY_PATH), default=BY_ID,
                   help="match namespaces by NS_GET_ID (one boot, default) or by stable path "
                        "(across boots and hosts)")
    p.add_argument("-t", "--type", action="append", metavar="TYPE",
                   help="only namespaces of this type (repeatable, or a comma list)")
    p.add_argument("--hide-host-processes", action="store_true",
                   help="leave out processes starting and exiting in the host's own "
                        "namespaces (what changes all the time); namespaces that appear, "
                        "go or change otherwise are still shown")
    p.add_argument("--json", action="store_true", help="one JSON document")
    args = p.parse_args(argv)
    from ..documents.ls import UnknownType, parse_types

    try:
        types = parse_types(args.type)
    except UnknownType as exc:
        raise DiffTrouble(str(exc)) from None
    result = document(_load(args.a), _load(args.b), args.by, types,
                      host_processes=not args.hide_host_processes)
    if args.json:
        print_json(result)
        return 0 if result["equal"] else 1
    out = []
    for d in result["appeared"]:
        out.append(f"+ {_label(d, args.by)}  held by {','.join(d['held_by'])}")
    for d in result["disappeared"]:
        out.append(f"- {_label(d, args.by)}  was held by {','.join(d['held_by'])}")
    for d in result["changed"]:
        out.append(f"~ {_label(d, args.by)}")
        out.extend(f"    + {_ref_text(r)}" for r in d["added"])
        out.extend(f"    - {_ref_text(r)}" for r in d["dropped"])
    for m in result["moved"]:
        out.append(f"> pid {m['pid']} ({m['comm']}) {m['link']}: {m['from']} -> {m['to']}")
    ifaces = result["interfaces"] or {}
    for i in ifaces.get("added", []):
        out.append(f"+ interface {i['name']} ({i['mac']}) in net:[{i['ns']}]")
    for i in ifaces.get("removed", []):
        out.append(f"- interface {i['name']} ({i['mac']}) in net:[{i['ns']}]")
    for i in ifaces.get("moved", []):
        out.append(f"> interface {i['from_name']} ({i['mac']}): net:[{i['from']}] -> "
                   f"{i['name']} in net:[{i['to']}]")
    if out:
        print_lines(out)
    return 0 if result["equal"] else 1
