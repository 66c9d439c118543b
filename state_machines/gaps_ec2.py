"""EC2 gaps of moto, filled for the local runtime (see state_machines/gaps.py).

Security groups belong to network interfaces, not to instances. In EC2:

* ``ModifyNetworkInterfaceAttribute(Groups=[...])`` replaces the interface's groups ("the new set of groups you
  specify replaces the current set"); an instance's interfaces each keep their own groups;
* ``ModifyInstanceAttribute(Groups=[...])`` replaces the groups of the instance's *primary* interface;
* ``ReplaceIamInstanceProfileAssociation`` changes the profile ``DescribeInstances`` reports for the instance.

moto 5.2 answers an attached interface's groups as the union of the interface's own groups and the instance's
launch groups, so after either call the old groups still show on the interface, and an interface in a second VPC
shows the first VPC's groups; and it leaves ``DescribeInstances.IamInstanceProfile`` on the replaced profile.
Patched here: an interface's groups are its own; the instance-level list follows the primary interface (as at
launch); a replaced association shows the new profile. The responder itself only ever calls the per-interface API.

Also restored (each from the EC2 API reference or user guide, as named):

* **Spot and termination protection** ("Change instance termination protection": "You can't enable termination
  protection for Spot Instances"): ``ModifyInstanceAttribute(DisableApiTermination=true)`` on a Spot instance is
  refused (``UnsupportedOperation``); moto accepts it.
* **Connection tracking** (ModifyNetworkInterfaceAttribute, ConnectionTrackingSpecificationRequest: TCP established
  60..432000 s, UDP stream 60..180 s, UDP 30..60 s): moto ignores the parameter. Here it is validated
  (``InvalidParameterValue``) and kept on the interface, and DescribeInstances / DescribeNetworkInterfaces report
  it as ``ConnectionTrackingConfiguration``.
* **Network ACL quota** (VPC quotas: 20 rules per network ACL and direction by default, the default rule not
  counted): ``CreateNetworkAclEntry`` past it fails ``NetworkAclEntryLimitExceeded``; moto has no limit.
  `set_acl_entry_limit(n)` changes the quota (tests), `reset()` restores 20.
* **Eventual consistency of new security groups** ("Eventual consistency in the Amazon EC2 API", whose example is
  ``InvalidGroup.NotFound`` right after ``CreateSecurityGroup``): moto answers at once. The switch
  `set_new_group_lag(calls)` makes each group created afterwards answer ``InvalidGroup.NotFound`` to the first
  `calls` calls that name it (DescribeSecurityGroups by id, Authorize/Revoke, ModifyNetworkInterfaceAttribute);
  `reset()` turns it off. Tests only.
* **Volume and attachment states** (EBS user guide, "Amazon EBS volume lifecycle": a new volume is ``creating`` until
  it is ``available``; "Attach an Amazon EBS volume to an instance": the attachment is ``attaching`` until
  ``attached``; AttachVolume on a volume that is not ``available`` fails ``IncorrectState``): moto makes a volume
  ``available`` and an attachment ``attached`` at once. The switch `set_volume_lag(describes)` makes each volume
  created afterwards ``creating``, and each attachment made afterwards ``attaching``, until the `describes`-th
  DescribeVolumes that lists it (then ``available`` / ``attached``); `reset()` turns it off. Tests only.
"""
from __future__ import annotations

from contextlib import ExitStack
from unittest import mock

ACL_ENTRY_LIMIT = 20
TRACKING_RANGES = {"TcpEstablishedTimeout": (60, 432000), "UdpStreamTimeout": (60, 180), "UdpTimeout": (30, 60)}
_switches: dict = {"acl_limit": ACL_ENTRY_LIMIT, "lag": 0, "volume_lag": 0}
_lagging: dict[str, int] = {}  # group id -> calls still answered "not found"
_volume_lag: dict[str, list[int]] = {}  # volume id -> [describes until available, describes until attached]


def set_acl_entry_limit(limit: int) -> None:
    _switches["acl_limit"] = limit


def set_new_group_lag(calls: int) -> None:
    _switches["lag"] = calls


def set_volume_lag(describes: int) -> None:
    _switches["volume_lag"] = describes


def reset() -> None:
    _switches.update(acl_limit=ACL_ENTRY_LIMIT, lag=0, volume_lag=0)
    _lagging.clear()
    _volume_lag.clear()


def _primary(instance):
    nics = getattr(instance, "nics", None) or {}
    return nics.get(0)


def install(stack: ExitStack) -> None:
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    def group_set(self):
        return list(self._group_set)

    original_modify_eni = EC2Backend.modify_network_interface_attribute
    original_modify_instance_groups = EC2Backend.modify_instance_security_groups
    original_replace = EC2Backend.replace_iam_instance_profile_association

    def modify_network_interface_attribute(self, eni_id, group_ids, *args, **kwargs):
        result = original_modify_eni(self, eni_id, group_ids, *args, **kwargs)
        eni = self.get_network_interface(eni_id)
        if group_ids and eni.instance is not None and _primary(eni.instance) is eni:
            eni.instance.security_groups = list(eni._group_set)
        return result

    def modify_instance_security_groups(self, instance_id, new_group_id_list):
        instance = original_modify_instance_groups(self, instance_id, new_group_id_list)
        primary = _primary(instance)
        if primary is not None and new_group_id_list:
            primary._group_set = list(instance.security_groups)
        return instance

    def replace_iam_instance_profile_association(self, association_id, *args, **kwargs):
        association = original_replace(self, association_id, *args, **kwargs)
        profile = association.iam_instance_profile
        if profile is not None:
            association.instance.iam_instance_profile = {"Arn": profile.arn, "Id": profile.id}
        return association

    stack.enter_context(mock.patch.object(NetworkInterface, "group_set", property(group_set)))
    stack.enter_context(mock.patch.object(EC2Backend, "modify_network_interface_attribute",
                                          modify_network_interface_attribute))
    stack.enter_context(mock.patch.object(EC2Backend, "modify_instance_security_groups",
                                          modify_instance_security_groups))
    stack.enter_context(mock.patch.object(EC2Backend, "replace_iam_instance_profile_association",
                                          replace_iam_instance_profile_association))
    _install_more(stack)  # after the patches above: they are the originals it wraps


def _not_yet(group_ids) -> None:
    from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError

    for group_id in group_ids or ():
        if _lagging.get(group_id, 0) > 0:
            _lagging[group_id] -= 1
            raise InvalidSecurityGroupNotFoundError(group_id)


def _install_more(stack: ExitStack) -> None:
    from moto.ec2.exceptions import EC2ClientError, InvalidParameterValueError
    from moto.ec2.models import EC2Backend
    from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

    original = {name: getattr(EC2Backend, name) for name in (
        "modify_instance_attribute", "create_network_acl_entry", "create_security_group", "describe_security_groups",
        "authorize_security_group_ingress", "authorize_security_group_egress", "revoke_security_group_ingress",
        "revoke_security_group_egress", "modify_network_interface_attribute")}
    original_eni_response = ElasticNetworkInterfaces.modify_network_interface_attribute

    def modify_instance_attribute(self, instance_id, key, value):
        if key == "disable_api_termination" and str(value).lower() == "true" and \
                getattr(self.get_instance(instance_id), "lifecycle", None) == "spot":
            raise EC2ClientError("UnsupportedOperation",
                                 f"You can't enable termination protection for Spot Instance '{instance_id}'.")
        return original["modify_instance_attribute"](self, instance_id, key, value)

    def create_network_acl_entry(self, network_acl_id, rule_number, protocol, rule_action, egress, *args, **kwargs):
        acl = self.get_network_acl(network_acl_id)
        same_way = [e for e in acl.network_acl_entries
                    if str(e.egress).lower() == str(egress).lower() and int(e.rule_number) != 32767]
        if len(same_way) >= _switches["acl_limit"]:
            raise EC2ClientError("NetworkAclEntryLimitExceeded",
                                 f"The maximum number of entries for network ACL {network_acl_id} has been reached.")
        return original["create_network_acl_entry"](self, network_acl_id, rule_number, protocol, rule_action, egress,
                                                    *args, **kwargs)

    def create_security_group(self, *args, **kwargs):
        group = original["create_security_group"](self, *args, **kwargs)
        if _switches["lag"]:
            _lagging[group.id] = _switches["lag"]
        return group

    def describe_security_groups(self, group_ids=None, *args, **kwargs):
        _not_yet(group_ids)
        return original["describe_security_groups"](self, group_ids, *args, **kwargs)

    def one_group(name):
        def call(self, group_name_or_id, *args, **kwargs):
            _not_yet([group_name_or_id])
            return original[name](self, group_name_or_id, *args, **kwargs)
        return call

    def modify_network_interface_attribute(self, eni_id, group_ids, *args, **kwargs):
        _not_yet(group_ids)
        return original["modify_network_interface_attribute"](self, eni_id, group_ids, *args, **kwargs)

    def modify_network_interface_response(self):
        spec = self._get_param("ConnectionTrackingSpecification") or {}
        if spec:
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            current = dict(getattr(eni, "connection_tracking_configuration", None) or {})
            for key, value in spec.items():
                low, high = TRACKING_RANGES.get(key, (None, None))
                if low is None or not low <= int(value) <= high:
                    raise InvalidParameterValueError(f"ConnectionTrackingSpecification.{key}={value}")
                current[key] = int(value)
            eni.connection_tracking_configuration = current
        return original_eni_response(self)

    patches = {"modify_instance_attribute": modify_instance_attribute,
               "create_network_acl_entry": create_network_acl_entry,
               "create_security_group": create_security_group,
               "describe_security_groups": describe_security_groups,
               "modify_network_interface_attribute": modify_network_interface_attribute,
               **{n: one_group(n) for n in ("authorize_security_group_ingress", "authorize_security_group_egress",
                                            "revoke_security_group_ingress", "revoke_security_group_egress")}}
    for name, function in patches.items():
        stack.enter_context(mock.patch.object(EC2Backend, name, function))
    stack.enter_context(mock.patch.object(ElasticNetworkInterfaces, "modify_network_interface_attribute",
                                          modify_network_interface_response))
    _install_volume_states(stack)
    stack.callback(reset)


def _install_volume_states(stack: ExitStack) -> None:
    """Volume ``creating`` -> ``available`` and attachment ``attaching`` -> ``attached`` (`set_volume_lag`)."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.elastic_block_store import Volume

    original = {n: getattr(EC2Backend, n) for n in ("create_volume", "attach_volume", "describe_volumes")}

    def status(self) -> str:
        if (_volume_lag.get(self.id) or [0])[0] > 0:
            return "creating"
        return "in-use" if self.attachment else "available"

    def create_volume(self, *args, **kwargs):
        volume = original["create_volume"](self, *args, **kwargs)
        if _switches.get("volume_lag"):
            _volume_lag[volume.id] = [_switches["volume_lag"], 0]
        return volume

    def attach_volume(self, volume_id, *args, **kwargs):
        if (_volume_lag.get(volume_id) or [0])[0] > 0:
            raise EC2ClientError("IncorrectState", f"vol '{volume_id}' is not 'available'.")
        attachment = original["attach_volume"](self, volume_id, *args, **kwargs)
        if _switches.get("volume_lag"):
            attachment.status = "attaching"
            _volume_lag.setdefault(volume_id, [0, 0])[1] = _switches["volume_lag"]
        return attachment

    def describe_volumes(self, *args, **kwargs):
        found = original["describe_volumes"](self, *args, **kwargs)
        for volume in found:
            lag = _volume_lag.get(volume.id)
            if not lag:
                continue
            if lag[0] > 0:
                lag[0] -= 1
            elif lag[1] > 0:
                lag[1] -= 1
                if lag[1] == 0 and volume.attachment is not None:
                    volume.attachment.status = "attached"
        return found

    stack.enter_context(mock.patch.object(Volume, "status", property(status)))
    for name, function in (("create_volume", create_volume), ("attach_volume", attach_volume),
                           ("describe_volumes", describe_volumes)):
        stack.enter_context(mock.patch.object(EC2Backend, name, function))
