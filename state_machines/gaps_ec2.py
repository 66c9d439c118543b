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
"""
from __future__ import annotations

from contextlib import ExitStack
from unittest import mock


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
