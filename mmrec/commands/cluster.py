"""Bring recorder hosts up on Ray, take them down, merge a cluster take's parts.

A rig of several recorder hosts is one Ray cluster: one head (any machine, e.g. the one
you run 'mmrec record --cluster' on) and one labelled node per recorder host. These are
thin wrappers over Ray's own 'ray start' / 'ray stop' (needs the extra: pip install
'mmrec[cluster]'; the same Ray and Python versions on every host):

  mmrec cluster up --head --ip 192.168.43.10            # on the head (prints its address)
  mmrec cluster up --name recA --address 192.168.43.10:6379 --ip 192.168.43.11
  mmrec cluster up --name recB --address 192.168.43.10:6379 --ip 192.168.44.11
  mmrec record --cluster 192.168.43.10:6379 --config rig.toml --hosts hosts.toml
  mmrec cluster merge takes/20240611-101500-scene12     # after a coordinator died
  mmrec cluster stop                                    # on each host

--ip is the address the other hosts reach this one at (Ray's --node-ip-address): set it
on a host with two network cards (the camera WiFi and the wired link), or Ray may pick
the wrong one. Token authentication is on: every host needs the same token (Ray's
~/.ray/auth_token, or RAY_AUTH_TOKEN in its environment; 'ray get-auth-token --generate'
makes one). The head's health check is tuned so a host that stops answering is declared
dead within seconds (Ray's default: about a minute).

'merge' makes one take of the hosts' parts under TAKE_DIR/hosts/ (each host's own take
and host.json): one manifest, one timeline on the reference clock, every camera's files
where they are; a host that died is said so, its files listed up to its death. It is
what 'mmrec record --cluster' does at the end; run it when the coordinator could not
(it died, or the hosts' folders are gathered elsewhere first).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from mmrec.errors import ConfigError


def _wrap(text: str) -> str:
    return textwrap.fill(text, 88)


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = sub.add_parser(
        "up",
        help="start Ray on this machine: the head, or a labelled recorder host",
        description=_wrap(
            "Start Ray on this machine (a thin wrapper over 'ray start'): the head, "
            "whose health check mmrec tunes so a lost host is noticed in ~3 s, or a recorder "
            "host labelled by --name (the Ray resource host:NAME its recorder is pinned to). "
            "Every host needs the same Ray and Python versions and the cluster's token "
            "(~/.ray/auth_token or RAY_AUTH_TOKEN)."
        ),
        epilog="""examples:
  mmrec cluster up --head --ip 10.0.0.1                                 # the coordinator
  mmrec cluster up --name recA --address 10.0.0.1:6379 --ip 10.0.0.11   # a recorder host
  mmrec cluster up --name recA --address 10.0.0.1:6379 --dry-run        # the ray command only""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--head", action="store_true", help="start the head (the cluster's control)")
    up.add_argument(
        "--name", metavar="NAME", help="this recorder host's name (Ray resource host:NAME)"
    )
    up.add_argument(
        "--address", metavar="HOST:PORT", help="the head's address (for a recorder host)"
    )
    up.add_argument(
        "--ip",
        metavar="ADDR",
        help="this machine's address on the rig's network (--node-ip-address)",
    )
    up.add_argument("--port", type=int, default=6379, help="the head's port (6379)")
    up.add_argument(
        "--cpus", type=int, metavar="N", help="CPUs Ray may use for proxy tasks here (all)"
    )
    up.add_argument("--dry-run", action="store_true", help="print the ray command, do not run it")
    stop = sub.add_parser(
        "stop",
        help="stop Ray on this machine (a take being recorded goes on)",
        description=_wrap(
            "Stop Ray on this machine ('ray stop'). A recorder host's take is not "
            "Ray's child: it records on to its --duration (or SIGTERM) and finalizes; then "
            "'mmrec cluster merge TAKE_DIR' makes the take."
        ),
        epilog="example:\n  mmrec cluster stop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stop.add_argument("--dry-run", action="store_true", help="print the ray command, do not run it")
    merge = sub.add_parser(
        "merge",
        help="merge a cluster take's hosts' parts into one take",
        description=_wrap(
            "Merge the parts the recorder hosts wrote under TAKE_DIR/hosts/ into one "
            "take (TAKE_DIR/manifest.json: one id, one timeline on the reference clock, every "
            "camera's files and host; what is missing is said). 'mmrec record --cluster' does "
            "this itself; run it after a coordinator died mid-take, or after 'mmrec repair' on "
            "a host's part. Needs no Ray."
        ),
        epilog="example:\n  mmrec cluster merge takes/20261207-101500",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    merge.add_argument(
        "take", type=Path, metavar="TAKE_DIR", help="the cluster take's folder (has hosts/)"
    )
    merge.add_argument("--json", action="store_true", help="print the merged manifest as JSON")


def up_command(args: argparse.Namespace) -> list[str]:
    """The 'ray start' command line for ``mmrec cluster up``."""
    from mmrec.cluster import HEALTH_CHECK

    if args.head == bool(args.address):
        raise ConfigError("give --head (on the head) or --address HEAD:PORT (on a recorder host)")
    if not args.head and not args.name:
        raise ConfigError("a recorder host needs --name NAME (its label, host:NAME)")
    cmd = ["ray", "start"]
    if args.head:
        cmd += ["--head", f"--port={args.port}", f"--system-config={json.dumps(HEALTH_CHECK)}"]
    else:
        cmd += [f"--address={args.address}"]
    if args.name:
        cmd += [f"--resources={json.dumps({f'host:{args.name}': 1})}"]
    if args.ip:
        cmd += [f"--node-ip-address={args.ip}"]
    if args.cpus is not None:
        cmd += [f"--num-cpus={args.cpus}"]
    return cmd


def run(args: argparse.Namespace) -> int:
    if args.action == "merge":
        from mmrec.cluster.merge import merge_take
        from mmrec.store.take import to_jsonable

        manifest = merge_take(args.take)
        if args.json:
            json.dump(to_jsonable(manifest), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(
                f"take {manifest.take_id}: {len(manifest.cameras)} camera(s) on "
                f"{len(manifest.hosts)} host(s), {manifest.outcome}: {manifest.outcome_detail}"
            )
            for h in manifest.hosts:
                print(
                    f"  {h.name}: {h.state}, {len(h.cameras)} camera(s) in {h.dir}"
                    + (f"; {h.note}" if h.note else "")
                )
            print(f"written to {args.take / 'manifest.json'}")
        return 0
    cmd = up_command(args) if args.action == "up" else ["ray", "stop"]
    if args.dry_run:
        print(shlex.join(cmd))  # pasteable: the JSON options are quoted
        return 0
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(ray_bin).exists():
        raise ConfigError("Ray is not installed here: pip install 'mmrec[cluster]'")  # its CLI
    return subprocess.run([ray_bin, *cmd[1:]]).returncode
