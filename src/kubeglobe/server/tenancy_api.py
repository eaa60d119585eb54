"""REST views of projects, project namespaces and platform role bindings.

Quota sums, scope rules and refusals to delete namespaces that hold workloads are made
by the admission webhook the global cluster calls for every write (REST, CLI or kubectl
alike); here only who-may-do-what is added.
"""


from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, ValidationError

from kubeglobe.api.names import ClusterName, ProjectName, ProjectNamespaceName, RoleBindingName
from kubeglobe.api.tenancy import PlatformRoleBindingSpec, ProjectNamespaceSpec, ProjectSpec
from kubeglobe.hub.tenancy.access import Access
from kubeglobe.hub.tenancy.workloads import FORCE_ANNOTATION
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.resources import PlatformRoleBindingCR, ProjectCR, ProjectNamespaceCR
from kubeglobe.server.auth import TokenAuthenticator
from kubeglobe.server.authorize import Authorizer, forbidden
from kubeglobe.server.errors import AUTHENTICATED, BODY, Accepted, errors
from kubeglobe.server.resources import (
    ResourceList,
    Resources,
    ResourceView,
    resource_view,
)


class ProjectCreate(BaseModel):
    name: ProjectName
    spec: ProjectSpec


class NamespaceCreate(BaseModel):
    name: ProjectNamespaceName | None = Field(
        default=None, description="the resource's name; default <namespace>-<cluster>")
    spec: ProjectNamespaceSpec


class BindingCreate(BaseModel):
    name: RoleBindingName
    spec: PlatformRoleBindingSpec


def _spec(model: type[BaseModel], raw: dict[str, Any]) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def tenancy_router(*, authenticate: TokenAuthenticator, authorize: Authorizer) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["tenancy"], responses=errors(*AUTHENTICATED))
    hub = authenticate.hub
    projects = Resources(hub, ProjectCR, "Project")
    namespaces = Resources(hub, ProjectNamespaceCR, "ProjectNamespace")
    bindings = Resources(hub, PlatformRoleBindingCR, "PlatformRoleBinding")
    Caller = Annotated[Identity, Depends(authenticate)]

    async def delete(res: Resources, name: str, force: bool) -> None:
        if force:
            await res.annotate(name, {FORCE_ANNOTATION: "true"})
        await res.delete(name)

    # -- projects ----------------------------------------------------------------------
    @router.get("/projects", response_model=ResourceList)
    async def list_projects(identity: Caller) -> ResourceList:
        """The projects you belong to (all of them for admins and auditors)."""
        access = await authorize.access(identity)
        return ResourceList(items=[resource_view(p) for p in await projects.all()
                                   if access.member_of(p["metadata"]["name"])])

    @router.get("/projects/{name}", response_model=ResourceView,
                responses=errors(403, 404, 422))
    async def get_project(name: ProjectName, identity: Caller) -> ResourceView:
        access = await authorize.access(identity)
        if not access.member_of(name):
            raise forbidden(identity, f"read project {name}", "a role in the project")
        return resource_view(await projects.get(name))

    @router.post("/projects", response_model=ResourceView, status_code=201,
                 responses=errors(*BODY, 403, 409))
    async def create_project(body: ProjectCreate, identity: Caller) -> ResourceView:
        await authorize.require_admin(identity, "create projects")
        return resource_view(await projects.create(body.name, body.spec))

    @router.put("/projects/{name}", response_model=ResourceView,
                responses=errors(*BODY, 403, 404))
    async def replace_project(name: ProjectName, body: ProjectSpec, identity: Caller,
                              force: bool = False) -> ResourceView:
        """Change clusters and quotas. Taking a cluster out removes the project's
        namespaces there, refused while they hold workloads unless `force`."""
        await authorize.require_admin(identity, "change projects")
        if force:
            await projects.annotate(name, {FORCE_ANNOTATION: "true"})
        return resource_view(await projects.replace_spec(name, body))

    @router.delete("/projects/{name}", status_code=202, response_model=Accepted,
                   responses=errors(403, 404, 422))
    async def delete_project(name: ProjectName, identity: Caller, force: bool = False,
                             ) -> Accepted:
        """Delete the project and its namespaces on every cluster; refused while they
        hold workloads unless `force`."""
        await authorize.require_admin(identity, "delete projects")
        await delete(projects, name, force)
        return Accepted(status=f"project {name} is being deleted with its namespaces")

    # -- project namespaces ------------------------------------------------------------
    def may_see(access: Access, obj: Any) -> bool:
        spec = obj.get("spec") or {}
        return access.sees_namespace(obj["metadata"]["name"], spec.get("project", ""))

    @router.get("/namespaces", response_model=ResourceList, responses=errors(422))
    async def list_namespaces(identity: Caller, project: ProjectName | None = None,
                              cluster: ClusterName | None = None) -> ResourceList:
        access = await authorize.access(identity)
        items = [n for n in await namespaces.all() if may_see(access, n)
                 and (project is None or (n.get("spec") or {}).get("project") == project)
                 and (cluster is None or (n.get("spec") or {}).get("cluster") == cluster)]
        return ResourceList(items=[resource_view(n) for n in items])

    @router.get("/namespaces/{name}", response_model=ResourceView,
                responses=errors(403, 404, 422))
    async def get_namespace(name: ProjectNamespaceName, identity: Caller) -> ResourceView:
        obj = await namespaces.get(name)
        if not may_see(await authorize.access(identity), obj):
            raise forbidden(identity, f"read project namespace {name}",
                            "a role in its project or namespace")
        return resource_view(obj)

    @router.post("/namespaces", response_model=ResourceView, status_code=201,
                 responses=errors(*BODY, 403, 409))
    async def create_namespace(body: NamespaceCreate, identity: Caller) -> ResourceView:
        """A namespace of a project on one of its clusters; refused (with the numbers)
        when its quota does not fit in what the project has left there."""
        access = await authorize.access(identity)
        if not access.manages(body.spec.project):
            raise forbidden(identity, f"add namespaces to project {body.spec.project}",
                            "the project-admin role in it or platform-admin")
        name = body.name or f"{body.spec.namespace}-{body.spec.cluster}"
        return resource_view(await namespaces.create(name, body.spec))

    @router.put("/namespaces/{name}", response_model=ResourceView,
                responses=errors(*BODY, 403, 404))
    async def replace_namespace(name: ProjectNamespaceName, body: ProjectNamespaceSpec,
                                identity: Caller) -> ResourceView:
        current = _spec(ProjectNamespaceSpec, (await namespaces.get(name)).get("spec") or {})
        access = await authorize.access(identity)
        for project in {body.project, current.project if current else body.project}:
            if not access.manages(project):
                raise forbidden(identity, f"change namespaces of project {project}",
                                "the project-admin role in it or platform-admin")
        return resource_view(await namespaces.replace_spec(name, body))

    @router.delete("/namespaces/{name}", status_code=202, response_model=Accepted,
                   responses=errors(403, 422))
    async def delete_namespace(name: ProjectNamespaceName, identity: Caller,
                               force: bool = False) -> Accepted:
        """Remove it from its cluster; refused while it holds workloads unless `force`."""
        try:
            obj = await namespaces.get(name)
        except HTTPException as e:
            if e.status_code == 404:
                return Accepted(status=f"project namespace {name} is already gone")
            raise
        project = (obj.get("spec") or {}).get("project", "")
        if not (await authorize.access(identity)).manages(project):
            raise forbidden(identity, f"delete namespaces of project {project}",
                            "the project-admin role in it or platform-admin")
        await delete(namespaces, name, force)
        return Accepted(status=f"project namespace {name} is being removed from its cluster")

    # -- role bindings -----------------------------------------------------------------
    @router.get("/rolebindings", response_model=ResourceList)
    async def list_bindings(identity: Caller) -> ResourceList:
        access = await authorize.access(identity)
        items = []
        for b in await bindings.all():
            spec = _spec(PlatformRoleBindingSpec, b.get("spec") or {})
            if access.reads_all or (spec is not None and access.sees_binding(spec)):
                items.append(resource_view(b))
        return ResourceList(items=items)

    @router.post("/rolebindings", response_model=ResourceView, status_code=201,
                 responses=errors(*BODY, 403, 409))
    async def create_binding(body: BindingCreate, identity: Caller) -> ResourceView:
        """Give a user or group a role: platform roles by platform admins; project roles
        also by the project's admins."""
        if not (await authorize.access(identity)).may_bind(body.spec):
            raise forbidden(identity, f"bind role {body.spec.role} at that scope",
                            "platform-admin, or project-admin of the project for project "
                            "roles")
        return resource_view(await bindings.create(body.name, body.spec))

    @router.delete("/rolebindings/{name}", status_code=204, responses=errors(403, 422))
    async def delete_binding(name: RoleBindingName, identity: Caller) -> None:
        try:
            obj = await bindings.get(name)
        except HTTPException as e:
            if e.status_code == 404:
                return
            raise
        spec = _spec(PlatformRoleBindingSpec, obj.get("spec") or {})
        access = await authorize.access(identity)
        if not (access.admin or (spec is not None and access.may_bind(spec))):
            raise forbidden(identity, f"delete role binding {name}",
                            "platform-admin, or project-admin of its project")
        await bindings.delete(name)

    return router
