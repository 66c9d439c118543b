"""Network ACL isolation: the decisions (which ACLs, which rule numbers), as plain functions.

Why: EC2 always tracks flows through a NAT gateway, an NLB, a GWLB, a Transit Gateway, PrivateLink or Network
Firewall, and all ICMP (VPC user guide, "Security group connection tracking"): a security-group change does not
cut them, so a C2 session through a NAT gateway survives the quarantine group. A network ACL is stateless and
does cut them.

What a network ACL can express: each entry has ONE address range, the remote end - the *source* of inbound
traffic, the *destination* of outbound traffic (VPC user guide, "Network ACL rules") - and it applies where
traffic crosses the boundary of a subnet associated with the ACL. So an entry naming the instance's own address
is evaluated only in the ACLs of *other* subnets: there it stops the instance's traffic entering (inbound, source =
the instance) and traffic to the instance leaving (outbound, destination = the instance), for the instance alone -
every other host of those subnets is untouched. That is where the always-tracked paths sit (the NAT gateway's
public subnet, load balancer nodes, endpoint, firewall and Transit Gateway attachment subnets). In the ACL of the
instance's own subnet such an entry would never match: it is not written there (unless that ACL also serves other
subnets), and nothing is claimed for it.

Which ACLs: every ACL of the instance's VPCs associated with a subnet that is neither one of the instance's
subnets nor entirely inside ``isolationCidrs`` (the responders' subnets stay able to reach the instance, as the
quarantine group allows). An ``allow`` entry for ``isolationCidrs`` is never added: in another subnet's ACL it
would open that whole subnet to those ranges, a change to every host there.

Rule numbers: evaluated lowest first, the first match wins. A deny entry works only below every ``allow`` entry
of its direction, so its number is the lowest number not in use in that direction, and it must be lower than the
lowest allow entry; if no such number is free the ACL is reported, not written out of order. An entry that is
already there (same direction, exact CIDR, deny, all protocols, below the allows) is reused: a second run adds
nothing. The numbers written are recorded so that a release can remove exactly those entries.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

DEFAULT_RULE = 32767  # the "*" rule every ACL ends with: not an entry of ours, not counted
MAX_RULE = 32766
ALL_PROTOCOLS = "-1"
DIRECTIONS = (False, True)  # Egress: inbound, outbound

# Connection-tracking idle timeouts set on each interface (EC2 API reference, ConnectionTrackingSpecificationRequest):
# TcpEstablishedTimeout 60..432000 s, UdpStreamTimeout 60..180 s, UdpTimeout 30..60 s. The minimum of each.
MIN_TRACKING = {"TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60, "UdpTimeout": 30}


class NoRoom(Exception):
    """No free rule number below the ACL's first allow entry: a deny entry would not take effect."""


def host_cidr(address: str) -> tuple[str, str]:
    """("CidrBlock", "10.0.1.5/32") or ("Ipv6CidrBlock", "2001:db8::5/128") for one address."""
    ip = ipaddress.ip_address(address)
    return ("Ipv6CidrBlock", f"{ip.compressed}/128") if ip.version == 6 else ("CidrBlock", f"{ip}/32")


def _cidr_of(entry: dict) -> str | None:
    return entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")


def _inside(cidr: str, ranges: Iterable[str]) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    for r in ranges:
        other = ipaddress.ip_network(r, strict=False)
        if other.version == net.version and net.subnet_of(other):
            return True
    return False


def target_acls(acls: list[dict], subnets: dict[str, str], own_subnets: set[str],
                isolation_cidrs: Iterable[str]) -> list[dict]:
    """The ACLs to write to (see the module docstring), sorted by id. `subnets`: {subnet id: IPv4 CIDR}."""
    cidrs = tuple(isolation_cidrs)
    chosen = []
    for acl in acls:
        others = [a["SubnetId"] for a in acl.get("Associations", []) if a.get("SubnetId")
                  and a["SubnetId"] not in own_subnets]
        if any(not (subnets.get(s) and _inside(subnets[s], cidrs)) for s in others):
            chosen.append(acl)
    return sorted(chosen, key=lambda a: a["NetworkAclId"])


def _first_allow(entries: list[dict], egress: bool) -> int:
    numbers = [e["RuleNumber"] for e in entries if e.get("Egress") is egress and e.get("RuleAction") == "allow"
               and e["RuleNumber"] != DEFAULT_RULE]
    return min(numbers, default=DEFAULT_RULE)


def existing_denies(entries: list[dict], addresses: Iterable[str]) -> list[dict]:
    """Entries already denying one of `addresses` (exact host CIDR, all protocols) below every allow entry."""
    wanted = {host_cidr(a)[1] for a in addresses}
    return [e for e in entries
            if _cidr_of(e) in wanted and e.get("RuleAction") == "deny" and str(e.get("Protocol")) == ALL_PROTOCOLS
            and e["RuleNumber"] < _first_allow(entries, bool(e.get("Egress")))]


def plan_entries(acl: dict, addresses: Iterable[str]) -> list[dict]:
    """The CreateNetworkAclEntry parameters still needed in `acl` for `addresses` (both directions), each with the
    lowest free rule number below the direction's first allow entry. [] when all are in place. NoRoom if a
    direction has no free number low enough."""
    entries = acl.get("Entries", [])
    present = {(bool(e.get("Egress")), _cidr_of(e)) for e in existing_denies(entries, addresses)}
    wanted = sorted({host_cidr(a) for a in addresses}, key=lambda kv: (kv[0], kv[1]))
    planned = []
    for egress in DIRECTIONS:
        used = {e["RuleNumber"] for e in entries if bool(e.get("Egress")) is egress}
        limit = _first_allow(entries, egress)
        free = (n for n in range(1, min(limit, MAX_RULE + 1)) if n not in used)
        for key, cidr in wanted:
            if (egress, cidr) in present:
                continue
            number = next(free, None)
            if number is None:
                raise NoRoom(f"{acl['NetworkAclId']}: no free {'outbound' if egress else 'inbound'} rule number "
                             f"below its first allow entry ({limit})")
            planned.append({"NetworkAclId": acl["NetworkAclId"], "RuleNumber": number, "Protocol": ALL_PROTOCOLS,
                            "RuleAction": "deny", "Egress": egress, key: cidr})
    return planned


def tracking_changes(current: dict | None) -> dict:
    """The ConnectionTrackingSpecification still to set on an interface ({} when every timeout is at its minimum).
    `current`: the interface's ConnectionTrackingConfiguration from DescribeInstances (None: the defaults)."""
    current = current or {}
    if all(current.get(k) == v for k, v in MIN_TRACKING.items()):
        return {}
    return dict(MIN_TRACKING)


# --------------------------------------------------------------------------------------------------------
# The step (adapters and journal passed in, as in responder.isolation)
# --------------------------------------------------------------------------------------------------------
def describe_entry(entry: dict) -> dict:
    """What the result records of one deny entry: enough for a release to delete exactly it
    (DeleteNetworkAclEntry takes the ACL, the rule number and the direction)."""
    return {"networkAclId": entry["NetworkAclId"], "ruleNumber": entry["RuleNumber"],
            "direction": "outbound" if entry["Egress"] else "inbound",
            "cidr": entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")}


def cut_tracked_flows(a, journal, nics: list[dict], addresses: set[str], isolation_cidrs: Iterable[str]) -> list[dict]:
    """Connection-tracking timeouts to their minimum on every interface, then deny entries for the instance's
    addresses in the ACLs chosen by `target_acls`. Returns the deny entries in place (found or written)."""
    from responder.journal import StepFailed

    for nic in nics:
        eni = nic["NetworkInterfaceId"]
        with journal.step("connection_tracking", eni):
            spec = tracking_changes(nic.get("ConnectionTrackingConfiguration"))
            if spec:
                a.ec2.set_connection_tracking(eni, spec)
            else:
                journal.note("unchanged", eni, detail="connection-tracking timeouts already at their minimum")
    vpcs = sorted({n["VpcId"] for n in nics if n.get("VpcId")})
    acls = subnets = None
    with journal.step("network_acl", ",".join(vpcs)):
        acls, subnets = a.ec2.network_acls(vpcs), a.ec2.subnet_cidrs(vpcs)
    if acls is None or subnets is None or not addresses:
        return []
    chosen = target_acls(acls, subnets, {n["SubnetId"] for n in nics if n.get("SubnetId")}, isolation_cidrs)
    if not chosen:
        with journal.step("network_acl", ",".join(vpcs)):
            journal.note("skipped", ",".join(vpcs), detail="no network ACL of another subnet: an ACL cannot single out "
                                                           "an instance in its own subnet; the security groups stand alone")
    in_place: list[dict] = []
    for acl in chosen:
        acl_id = acl["NetworkAclId"]
        with journal.step("network_acl", acl_id):
            found = existing_denies(acl.get("Entries", []), addresses)
            in_place.extend(describe_entry({**e, "NetworkAclId": acl_id}) for e in found)
            try:
                planned = plan_entries(acl, addresses)
            except NoRoom as exc:
                raise StepFailed("NetworkAclNoRoom", f"{exc}; the security-group isolation stands") from exc
            if not planned:
                journal.note("unchanged", acl_id, detail=f"deny entries for {sorted(addresses)} already in place")
            for entry in planned:
                try:
                    a.ec2.add_acl_entry(entry)
                except Exception as exc:
                    if getattr(exc, "response", {}).get("Error", {}).get("Code") == "NetworkAclEntryLimitExceeded":
                        raise StepFailed("NetworkAclFull", f"{acl_id} has no room for another "
                                         f"{'outbound' if entry['Egress'] else 'inbound'} entry (quota: 20 per "
                                         "direction by default); the security-group isolation stands") from exc
                    raise
                if not journal.dry_run:
                    in_place.append(describe_entry(entry))
    return in_place
