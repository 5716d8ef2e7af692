"""The aiohttp application: authn → flow control → faults → authz → verb handlers, with every
request accounted. Errors before a watch starts are HTTP statuses; after it starts they are
in-stream ERROR events (spec §2, checklist 17)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import yaml
from aiohttp import web

from kubestream.sim.accounting import RequestLog, RequestRecord
from kubestream.sim.apiserver import discovery_docs as discovery
from kubestream.sim.apiserver import field_validation as validation
from kubestream.sim.apiserver import (
    health,
    openapi,
    partial_meta,
    review_proto,
    reviews,
    server_apply,
    tables,
)
from kubestream.sim.apiserver.faults import Faults
from kubestream.sim.apiserver.listopts import ListOptions, parse_options
from kubestream.sim.apiserver.requestinfo import RequestInfo, parse
from kubestream.sim.config import SimConfig
from kubestream.sim.nodes.logfiles import NodeLogWriter
from kubestream.sim.nodes.podlogs import PodLogServer
from kubestream.sim.storage import fieldmanager as fm
from kubestream.sim.storage import status as st
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.storage.patch import APPLY, PATCH_TYPES
from kubestream.sim.storage.resources import ResourceType
from kubestream.sim.storage.selectors import make_filter
from kubestream.sim.storage.status import SimApiError
from kubestream.sim.storage.watch import WatchHub, WatchParams, WatchSession

JSON = "application/json"
BODY_TYPES = ("application/json", "application/yaml")
"""Request body media types served (the real server also takes application/vnd.kubernetes.protobuf)."""
_log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = JSON) -> web.Response:
    """Serialise with orjson (hot path) and set the content type."""
    return web.Response(body=orjson.dumps(body), status=status, headers={"Content-Type": content_type,
                                                                        **(headers or {})})


def error_response(err: SimApiError) -> web.Response:
    """A Status body with its code and headers (Retry-After when retryAfterSeconds is set)."""
    return json_response(err.status, err.code, err.headers)


def flow_control_429(retry_after: int) -> web.Response:
    """spec §6: APF and max-in-flight answer 429 with Go's ``http.Error``: plain text, nosniff,
    Retry-After (filters/priority-and-fairness.go, maxinflight.go tooManyRequests)."""
    return web.Response(status=429, text=st.TOO_MANY_REQUESTS_TEXT, content_type="text/plain", charset="utf-8",
                        headers={"Retry-After": str(retry_after), "X-Content-Type-Options": "nosniff"})


def write_options(request: web.Request, options_kind: str) -> tuple[str, bool]:
    """(field manager, dry run) of a write: ``fieldManager`` or the User-Agent's first segment
    (fieldmanager.manager_from_request), ``dryRun=All`` (the only value; anything else is the 422
    ValidateDryRun answers, in the request's *Options kind)."""
    values = request.query.getall("dryRun", [])
    bad = [v for v in values if v != "All"]
    if bad:
        raise st.invalid(f"{options_kind}.meta.k8s.io", "meta.k8s.io", options_kind, "", [
            st.field_error("NotSupported", "dryRun", 'supported values: "All"',
                           "[]string{" + ", ".join(f'"{v}"' for v in values) + "}")])
    manager = fm.manager_from_request(request.query.get("fieldManager"), request.headers.get("User-Agent"))
    return manager, bool(values)


class TokenBucket:
    """A simple qps/burst limiter standing in for API Priority and Fairness."""

    def __init__(self, qps: float, burst: int) -> None:
        self._qps = qps
        self._burst = float(max(1, burst))
        self._tokens = self._burst
        self._last = time.monotonic()

    def allow(self) -> bool:
        """Take a token if one is available."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class OpenWatch:
    """A streaming watch the fault injector can cut."""

    def __init__(self, request: web.Request, session: WatchSession, resource: str) -> None:
        self.request = request
        self.session = session
        self.resource = resource
        self.dropped = False

    def drop(self) -> None:
        """Cut the connection without the terminating chunk."""
        self.dropped = True
        self.session.closed.set()
        if self.request.transport is not None:
            self.request.transport.abort()


class ApiApp:
    """Request handling state shared by all requests of one server."""

    def __init__(self, config: SimConfig, cluster: SimCluster, faults: Faults, requests: RequestLog) -> None:
        self.config = config
        self.cluster = cluster
        self.faults = faults
        self.requests = requests
        self.hub: WatchHub | None = None
        self.watches: set[OpenWatch] = set()
        self.log_writers: dict[str, NodeLogWriter] = {}
        """Node name → the writer whose files serve that node's ``pods/log``."""
        self._pod_logs = PodLogServer(self.log_writers)
        self._limiter = TokenBucket(config.rate_limit_qps, config.rate_limit_burst) if config.rate_limit_qps else None

    def make_app(self) -> web.Application:
        """The aiohttp application (call on the server loop)."""
        self.hub = WatchHub(asyncio.get_running_loop(), self.cluster.store)
        app = web.Application(client_max_size=self.config.max_body_bytes * 4 + 1024)
        app.router.add_get("/_sim/requests", self._admin_requests)
        app.router.add_post("/_sim/requests/reset", self._admin_reset)
        app.router.add_post("/_sim/faults", self._admin_faults)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- admin --------------------------------------------------------------------------------------

    async def _admin_requests(self, request: web.Request) -> web.Response:
        return json_response(self.requests.to_json())

    async def _admin_reset(self, request: web.Request) -> web.Response:
        self.requests.reset()
        return json_response({"ok": True})

    async def _admin_faults(self, request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
            result = self.faults.apply_json(spec)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"ok": True, "result": result})

    def drop_watches(self, resource: str | None) -> int:
        """Cut open watches (on the server loop)."""
        hit = [w for w in self.watches if resource is None or w.resource == resource]
        for w in hit:
            w.drop()
        return len(hit)

    # -- pipeline -----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point of every API request."""
        info = parse(request.method, request.path, request.query.get("watch"))
        started = time.time()
        response: web.StreamResponse
        try:
            response = await self._pipeline(request, info)
        except SimApiError as err:
            response = error_response(err)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:  # a simulator bug must still answer with a Status, never hang
            _log.exception("sim request failed: %s %s", request.method, request.path_qs)
            response = json_response(st.failure(500, "InternalError", "Internal error occurred: simulator bug", {}), 500)
        if info.verb != "watch" or response.status != 200:
            self._record(request, info, response.status, started)
        return response

    def _record(self, request: web.Request, info: RequestInfo, code: int, started: float) -> None:
        self.requests.add(RequestRecord(
            verb=info.verb or "other", resource=info.resource, namespace=info.namespace,
            watch=info.verb == "watch", code=code, label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"), user_agent=request.headers.get("User-Agent", ""),
            path=request.path_qs, time=started, subresource=info.subresource,
            user=self.config.user_for_token(_bearer(request)) or "",
        ))

    def _user(self, request: web.Request) -> str:
        token = _bearer(request)
        user = self.config.user_for_token(token)  # config.tokens may be rotated at runtime
        if user is None:
            if token is None and health.is_public(request.path):
                return reviews.ANONYMOUS  # health.PUBLIC_PATHS: anonymous may read these
            raise st.unauthorized()
        return user

    async def _pipeline(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        user = self._user(request)
        if self._limiter is not None and not self._limiter.allow():
            return flow_control_429(1)
        delay = self.faults.delay()
        if delay:
            await asyncio.sleep(delay)
        storm = self.faults.storm_for(info.resource, info.verb)
        if storm is not None:
            if storm.status == 429 and not storm.as_status:
                return flow_control_429(storm.retry_after or 1)
            raise st.too_many_requests(storm.retry_after or 1) if storm.status == 429 else st.generic(
                storm.status, storm.retry_after)
        if info.verb == "version":
            return json_response(discovery.version_info(self.config.version))
        if info.verb == "":
            extra = await self._non_resource(request, info, user)
            if extra is not None:
                return extra
        if info.verb == "discovery":
            return self._discovery(request, info)
        if info.verb == "openapi":
            return self._openapi(request)
        if info.rtype is None or not info.verb:
            raise st.not_found_generic()
        self._authorize(user, info)
        return await self._resource(request, info, info.rtype)

    async def _non_resource(self, request: web.Request, info: RequestInfo, user: str) -> web.StreamResponse | None:
        """Health endpoints (health.py) and the create-only reviews (reviews.py), or None."""
        reply = health.answer(request.path, request.query)
        if reply is not None:
            return reply
        rest = [p for p in request.path.split("/") if p][3:]
        review = reviews.find(info.group, info.version, rest) if request.path.startswith("/apis/") else None
        if review is None:
            return None
        if request.method != "POST":
            raise st.method_not_allowed("get" if request.method == "GET" else request.method.lower())
        protobuf = request.content_type == review_proto.PROTOBUF
        if "Content-Type" in request.headers and request.content_type not in BODY_TYPES and not protobuf:
            raise st.unsupported_media_type(request.content_type, [*BODY_TYPES, review_proto.PROTOBUF])
        raw = await self._read_body(request)
        try:
            if protobuf:
                body = review_proto.decode_review(raw)
            else:
                body = yaml.safe_load(raw) if request.content_type == "application/yaml" else orjson.loads(raw)
        except (orjson.JSONDecodeError, yaml.YAMLError, ValueError, UnicodeDecodeError) as exc:
            raise st.bad_request(f"the object provided is unrecognized (must be of type {review.kind}): "
                                 f"couldn't get version/kind; json parse error: {exc}") from None
        return json_response(reviews.create(review, self.config, user, body), 201)

    def _authorize(self, user: str, info: RequestInfo) -> None:
        rtype = info.rtype
        assert rtype is not None
        for rule in self.config.deny:
            if rule.matches(info.verb, rtype.group_resource, info.namespace, user):
                raise st.forbidden(user, info.verb, rtype.plural, rtype.group, info.namespace, info.name)
            if info.subresource == "log" and rule.matches(info.verb, f"{rtype.group_resource}/log", info.namespace, user):
                # RBAC names subresources "<resource>/<subresource>" (pods/log).
                raise st.forbidden(user, info.verb, f"{rtype.plural}/log", rtype.group, info.namespace, info.name)

    def _discovery(self, request: web.Request, info: RequestInfo) -> web.Response:
        accept = request.headers.get("Accept", "")
        path = request.path.rstrip("/")
        if path in ("/api", "/apis"):
            core = path == "/api"
            if self.config.aggregated_discovery and discovery.wants_aggregated(accept):
                return json_response(discovery.aggregated(core), content_type=discovery.AGGREGATED_CONTENT_TYPE)
            if core:
                return json_response(discovery.core_versions(f"{request.host}"))
            return json_response(discovery.group_list())
        doc = discovery.resource_list(info.group, info.version) if info.version else None
        if doc is None:
            raise st.not_found_generic()
        return json_response(doc)

    def _openapi(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["openapi", "v3"]:
            return json_response(openapi.v3_index())
        if len(parts) > 2 and parts[1] == "v3":
            doc = openapi.v3_document("/".join(parts[2:]))
            if doc is not None:
                return json_response(doc)
        raise st.not_found_generic()

    # -- resource verbs -----------------------------------------------------------------------------

    async def _resource(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.StreamResponse:
        if info.subresource == "log" and rtype.kind == "Pod" and info.verb == "get":
            obj = self.cluster.get_obj(rtype, info.namespace, str(info.name))
            return await self._pod_logs.serve(request, self.cluster.view(rtype, obj))
        if info.subresource not in (None, "status"):
            raise st.not_found_generic()
        if info.verb not in rtype.verbs and info.verb not in ("get", "list", "watch"):
            raise st.method_not_allowed(info.verb)
        if info.verb == "list":
            return await self._list(request, info, rtype)
        if info.verb == "watch":
            return await self._watch(request, info, rtype)
        if info.verb == "get":
            obj = self.cluster.get_obj(rtype, info.namespace, str(info.name))
            return self._object_response(request, rtype, obj)
        if info.verb == "create":
            if info.name is not None or (rtype.namespaced and info.namespace is None):
                raise st.method_not_allowed("create")  # no POST route on /<name> or all-namespaces URLs
            manager, dry_run = write_options(request, "CreateOptions")
            body = await self._body(request, rtype)
            headers = self._validate_fields(request, rtype, body)
            obj = self.cluster.create_obj(rtype, info.namespace, body, manager=manager, dry_run=dry_run)
            return self._object_response(request, rtype, obj, 201, headers)
        if info.verb == "update":
            manager, dry_run = write_options(request, "UpdateOptions")
            body = await self._body(request, rtype)
            headers = self._validate_fields(request, rtype, body)
            obj, created = self.cluster.update_obj(rtype, info.namespace, str(info.name), body,
                                                   subresource=info.subresource, manager=manager, dry_run=dry_run)
            return self._object_response(request, rtype, obj, 201 if created else 200, headers)
        if info.verb == "patch":
            return await self._patch(request, info, rtype)
        if info.verb == "delete":
            return await self._delete(request, info, rtype)
        if info.verb == "deletecollection":
            return await self._delete_collection(request, info, rtype)
        raise st.method_not_allowed(info.verb)

    def _object_response(self, request: web.Request, rtype: ResourceType, stored: dict[str, Any],
                         status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        view = self.cluster.view(rtype, stored)
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept and tables.wants_table(accept):
            return json_response(tables.to_table(rtype, [view], include_headers=True, list_meta=None), status, headers)
        if partial_meta.wanted(accept) == partial_meta.KIND:
            return json_response(partial_meta.of(view), status, headers)
        return json_response(view, status, headers)

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise st.request_entity_too_large(limit)
        # read(n) returns what has arrived so far, not n bytes: loop to the end of the body.
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(limit + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise st.request_entity_too_large(limit)
        return b"".join(chunks)

    async def _body(self, request: web.Request, rtype: ResourceType) -> Any:
        if "Content-Type" in request.headers and request.content_type not in BODY_TYPES:
            # No kept source of the k8s.io generated.proto schemas: protobuf (and anything else)
            # gets the 415 the real negotiation answers for a type it does not serve
            # (handlers/rest.go NegotiateInputSerializer), listing what is accepted.
            raise st.unsupported_media_type(request.content_type, list(BODY_TYPES))
        raw = await self._read_body(request)
        if request.content_type == "application/yaml":
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise st.bad_request(f"the object provided is unrecognized (must be of type {rtype.kind}): "
                                     f"couldn't get version/kind; yaml parse error: {exc}") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            summary = raw[:30].decode(errors="replace") + (" ..." if len(raw) > 30 else "")
            # handlers/rest.go transformDecodeError wording.
            raise st.bad_request(
                f"the object provided is unrecognized (must be of type {rtype.kind}): couldn't get version/kind; "
                f"json parse error: {exc} ({summary})"
            ) from None

    def _validate_fields(self, request: web.Request, rtype: ResourceType, body: Any) -> dict[str, str]:
        mode = request.query.get("fieldValidation", "Warn")  # Warn is the server default since 1.27
        if mode not in ("Ignore", "Warn", "Strict"):
            raise st.bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{mode}"')
        if mode == "Ignore" or not isinstance(body, dict):
            return {}
        unknown = validation.unknown_fields(rtype, body)
        if not unknown:
            return {}
        if mode == "Strict":
            # handlers/rest.go: the decoder's error is wrapped as "<Kind> in version ... cannot be handled".
            raise st.bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: strict decoding error: '
                + ", ".join(f'unknown field "{f}"' for f in unknown))
        return {"Warning": ", ".join(f'299 - "unknown field \\"{f}\\""' for f in unknown)}

    async def _patch(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.Response:
        content_type = request.content_type
        if content_type not in PATCH_TYPES:
            raise st.unsupported_media_type(content_type, PATCH_TYPES)
        raw = await self._read_body(request)
        server_apply.check_patch_options(request, apply=content_type == APPLY)
        if content_type == APPLY:
            return self._apply(request, info, rtype, raw)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise st.bad_request(f"error decoding patch: {exc}") from None
        headers = self._validate_fields(request, rtype, body) if isinstance(body, dict) else {}
        manager, dry_run = write_options(request, "PatchOptions")
        obj = self.cluster.patch_obj(rtype, info.namespace, str(info.name), content_type, body,
                                     subresource=info.subresource, manager=manager, dry_run=dry_run)
        return self._object_response(request, rtype, obj, 200, headers)

    def _apply(self, request: web.Request, info: RequestInfo, rtype: ResourceType, raw: bytes) -> web.Response:
        """Server-side apply (storage/apply.py): 201 when it created the object."""
        config = server_apply.decode(raw)
        headers = self._validate_fields(request, rtype, config) if isinstance(config, dict) else {}
        obj, created = server_apply.run(self.cluster, request, info, rtype, config)
        return self._object_response(request, rtype, obj, 201 if created else 200, headers)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await self._read_body(request)
        options: dict[str, Any] = {}
        if raw.strip():
            try:
                loaded = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise st.bad_request(f"error decoding DeleteOptions: {exc}") from None
            if isinstance(loaded, dict):
                options = loaded
        if isinstance(options.get("dryRun"), list):
            options["dryRun"] = bool(options["dryRun"])
        if "gracePeriodSeconds" in request.query:
            try:
                options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
            except ValueError:
                raise st.bad_request("gracePeriodSeconds: invalid syntax") from None
        return options

    async def _delete(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.Response:
        options = await self._delete_options(request)
        grace = options.get("gracePeriodSeconds")
        propagation = options.get("propagationPolicy") or request.query.get("propagationPolicy")
        if options.get("orphanDependents") is not None and propagation is None:
            propagation = "Orphan" if options["orphanDependents"] else "Background"
        dry_run = bool(request.query.getall("dryRun", [])) or bool(options.get("dryRun"))
        obj, deleted_now = self.cluster.delete_obj(
            rtype, info.namespace, str(info.name), grace_period_s=None if grace is None else float(grace),
            preconditions=options.get("preconditions"), propagation=propagation, http=True, dry_run=dry_run)
        headers: dict[str, str] = {}
        if rtype.kind == "Job" and propagation is None:
            # registry/batch/job/strategy.go: batch/v1 orphans by default and says so.
            headers["Warning"] = ('299 - "child pods are preserved by default when jobs are deleted; set '
                                  'propagationPolicy=Background to remove them or set propagationPolicy=Orphan to '
                                  'suppress this warning"')
        if rtype.kind == "Pod" or not deleted_now:
            # spec §3: pods return the object (ReturnDeletedObject); an object left for its
            # finalizers too; both 200 (202 only for the deprecated orphanDependents=false).
            return self._object_response(request, rtype, obj, 200, headers)
        meta = obj["metadata"]
        return json_response(st.success(meta["name"], rtype.group, rtype.plural, meta.get("uid", "")), 200, headers)

    async def _delete_collection(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.Response:
        options = await self._delete_options(request)
        grace = options.get("gracePeriodSeconds")
        flt = make_filter(rtype, info.namespace, request.query.get("labelSelector"), request.query.get("fieldSelector"))
        page = self.cluster.list_page(rtype, flt)
        deleted = []
        for obj in page.items:
            meta = obj["metadata"]
            try:
                gone, _ = self.cluster.delete_obj(rtype, meta.get("namespace"), meta["name"],
                                                  grace_period_s=None if grace is None else float(grace),
                                                  propagation=options.get("propagationPolicy"), http=True,
                                                  dry_run=bool(request.query.getall("dryRun", [])))
            except SimApiError as err:
                if err.code == 404:
                    continue
                raise
            deleted.append(self.cluster.item_view(rtype, gone))
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                              "metadata": {"resourceVersion": str(self.cluster.resource_version)}, "items": deleted})

    # -- list and watch -----------------------------------------------------------------------------

    async def _wait_for_rv(self, rv: int) -> None:
        """spec §2: block up to 3 s for a too-new RV, then 504 ResourceVersionTooLarge."""
        store = self.cluster.store
        if rv <= store.rv:
            return
        assert self.hub is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.too_large_rv_wait_s
        while store.rv < rv:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise st.too_large_resource_version(rv, store.rv)
            changed = self.hub.changed
            if store.rv >= rv:
                break
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    async def _list(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.Response:
        opts = parse_options(request.query, watch=False)
        flt = make_filter(rtype, info.namespace, opts.label_selector, opts.field_selector)
        if opts.rv and not opts.continue_token:
            await self._wait_for_rv(opts.rv)
        # spec §1: the watch cache ignores limit for RV=0 (computeListLimit); etcd, which serves
        # the uncached Events, honours it and pages with continue tokens.
        ignore_limit = opts.rv_is_zero and rtype.watch_cached
        page = self.cluster.list_page(
            rtype, flt, rv=opts.rv, exact=opts.exact, limit=None if ignore_limit else opts.limit,
            continue_token=opts.continue_token or None,
        )
        meta: dict[str, Any] = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept and tables.wants_table(accept):
            views = [self.cluster.view(rtype, o) for o in page.items]
            return json_response(tables.to_table(rtype, views, include_headers=True, list_meta=meta))
        items = page.items if rtype.kind != "Event" else [self.cluster.item_view(rtype, o) for o in page.items]
        if partial_meta.wanted(accept) == partial_meta.LIST_KIND:
            return json_response(partial_meta.list_of(items, meta))
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": meta,
                              "items": items})

    def _watch_params(self, opts: ListOptions, info: RequestInfo, rtype: ResourceType) -> WatchParams:
        flt = make_filter(rtype, info.namespace, opts.label_selector, opts.field_selector)
        if info.name is not None:  # legacy /watch/.../name: a single object
            flt = make_filter(rtype, info.namespace, opts.label_selector,
                              ",".join(filter(None, [opts.field_selector, f"metadata.name={info.name}"])))
        return WatchParams(rtype, flt, opts.rv, send_initial_events=bool(opts.send_initial_events),
                           allow_bookmarks=opts.allow_bookmarks, timeout_s=opts.timeout_s,
                           force_expired=self.faults.take_expire(rtype.group_resource))

    async def _watch(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.StreamResponse:
        opts = parse_options(request.query, watch=True)
        params = self._watch_params(opts, info, rtype)
        if opts.rv and opts.send_initial_events:
            # spec §2: a streaming list waits for the cache to reach a too-new RV (up to 3 s), and
            # then fails in-stream (cacher.go waitUntilWatchCacheFreshAndForceAllEvents →
            # newErrWatcher). A plain watch just waits for the store to get there.
            try:
                await self._wait_for_rv(opts.rv)
            except SimApiError as err:
                params.error = err.status
        assert self.hub is not None
        accept = request.headers.get("Accept", "")
        table_fn = None
        if "as=Table" in accept and tables.wants_table(accept):
            def table_fn(objs: list[dict[str, Any]], first: bool) -> dict[str, Any]:
                return tables.to_table(rtype, objs, include_headers=first, list_meta=None)
        elif partial_meta.wanted(accept) is not None:
            def table_fn(objs: list[dict[str, Any]], first: bool) -> dict[str, Any]:
                return partial_meta.of(objs[0])  # a watch sends PartialObjectMetadata per event
        session = WatchSession(self.cluster, self.hub, params, bookmark_interval_s=self.config.bookmark_interval_s,
                               table=table_fn, version=self.config.version)
        session.start()
        cut_mid_object = self.faults.take_cut_mid_object()
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)  # spec §2: headers flushed before any event (BeginStream)
        except BaseException:
            session.release()  # the client left before the stream began
            raise
        self._record(request, info, 200, time.time())
        handle = self.requests.watch_opened(
            rtype.group_resource, user=self.config.user_for_token(_bearer(request)) or "",
            field_selector=request.query.get("fieldSelector"), label_selector=request.query.get("labelSelector"))
        open_watch = OpenWatch(request, session, rtype.group_resource)
        self.watches.add(open_watch)
        try:
            async for chunk in session.chunks():
                if open_watch.dropped:
                    return response
                if cut_mid_object:
                    first_line = chunk.split(b"\n", 1)[0]
                    await response.write(first_line[: max(1, len(first_line) // 2)])
                    open_watch.drop()
                    return response
                await response.write(chunk)
                self.requests.watch_streamed(handle, chunk)
            if not open_watch.dropped:
                await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            session.release()
            self.watches.discard(open_watch)
            self.requests.watch_closed(handle)
        return response


def _bearer(request: web.Request) -> str | None:
    """The request's bearer token, if it sent one."""
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None
