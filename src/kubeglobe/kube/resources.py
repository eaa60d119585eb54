"""lightkube resource classes for the platform's own CRDs."""

from __future__ import annotations

from lightkube.generic_resource import create_global_resource

from kubeglobe.api.cluster import CLUSTER_KIND, CLUSTER_PLURAL
from kubeglobe.api.meta import GROUP, VERSION

ClusterCR = create_global_resource(GROUP, VERSION, CLUSTER_KIND, CLUSTER_PLURAL)
ProjectCR = create_global_resource(GROUP, VERSION, "Project", "projects")
ProjectNamespaceCR = create_global_resource(GROUP, VERSION, "ProjectNamespace",
                                            "projectnamespaces")
PlatformRoleBindingCR = create_global_resource(GROUP, VERSION, "PlatformRoleBinding",
                                               "platformrolebindings")
UserCR = create_global_resource(GROUP, VERSION, "User", "users")
GroupCR = create_global_resource(GROUP, VERSION, "Group", "groups")
