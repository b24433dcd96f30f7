"""One stack per region in one moto server (`provision.py --regions`): the region set, the multi-region
parameters each region's stack gets, and where each region's manifest and env file go.

The template's parameters say which regions a stack works with (docs/multi-region.md): every stack
names the same primary, and its own two peers. The primary is deployed first, as on AWS: its global
table creates the replicas in every region of the set.
"""

from __future__ import annotations

from pathlib import Path

from . import ProvisionError

# The template's parameters for the region set; --parameter may not set them beside --regions.
REGION_PARAMETERS = ("PrimaryRegion", "PeerRegion1", "PeerRegion2")
PEER_SLOTS = 2


def parse(text: str) -> list[str]:
    """`us-west-2,us-east-1,eu-west-1` -> the regions, the first one the primary."""
    regions = [r.strip() for r in text.split(",") if r.strip()]
    if len(set(regions)) != len(regions):
        raise ProvisionError(f"--regions {text!r}: a region is named twice")
    if not 2 <= len(regions) <= PEER_SLOTS + 1:
        raise ProvisionError(
            f"--regions {text!r}: give 2 or {PEER_SLOTS + 1} regions (the template has {PEER_SLOTS} peer slots, "
            f"PeerRegion1/2; docs/multi-region.md, 'Adding a fourth region')"
        )
    return regions


def parameters(regions: list[str], region: str, overrides: list[str]) -> list[str]:
    """`--parameter` values for `region`'s stack: the primary, its peers in the set's order, then the
    user's own overrides (which may not name the region parameters)."""
    clash = [o for o in overrides if o.split("=", 1)[0] in REGION_PARAMETERS]
    if clash:
        raise ProvisionError(f"--parameter {', '.join(clash)}: --regions sets {', '.join(REGION_PARAMETERS)} itself")
    peers = [r for r in regions if r != region] + [""] * PEER_SLOTS
    values = {"PrimaryRegion": regions[0], "PeerRegion1": peers[0], "PeerRegion2": peers[1]}
    return [f"{k}={v}" for k, v in values.items()] + overrides


def path_for(path: str, region: str) -> Path:
    """`.local/stack.json` -> `.local/us-west-2/stack.json`."""
    p = Path(path)
    return p.parent / region / p.name


def share_global_tables(manifests: dict[str, dict]) -> None:
    """Every region's manifest lists the global tables it holds a replica of (only the declaring
    stack knows them), so that devstack, given the manifests, knows which tables to replicate."""
    tables = [t for m in manifests.values() for t in m.get("global_tables") or []]
    for region, manifest in manifests.items():
        mine = [t for t in tables if region in t["regions"]]
        if mine:
            manifest["global_tables"] = mine
