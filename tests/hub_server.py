"""A local stand-in for the Hugging Face Hub HTTP API, for tests (the real Hub is unreachable here).

It speaks just enough of the protocol for the real ``huggingface_hub`` client: ``create_repo``,
``upload_folder`` / ``create_commit`` (pre-upload answers "regular" for every file, so contents come
base64 in the NDJSON commit), README metadata validation, ``repo_info``, ``list_repo_tree``, ``hf_hub_download`` and
``snapshot_download`` (HEAD/GET on ``/{repo}/resolve/{revision}/{path}``). Writes need the token
given to the server. Repositories live in memory; every commit is kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml


@dataclass
class Repo:
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    private: bool = False

    def files(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if revision == "main":
            return self.commits[-1]
        return next((c for c in self.commits if c[0] == revision), None)


def _sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class LocalHub:
    """``with LocalHub(token="hf_test") as hub: ... hub.endpoint ...``; ``hub.requests`` logs the calls."""

    def __init__(self, token: str = "hf_local_test_token"):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization header)
        self.validated: list[dict] = []  # README metadata checked through /api/validate-yaml
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ request handling
    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, status: int, obj, error_code: str | None = None):
                headers = {"Content-Type": "application/json"}
                if error_code:
                    headers["X-Error-Code"] = error_code
                self._send(status, json.dumps(obj).encode(), headers)

            def _authorized(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {hub.token}"

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _route(self, method: str):
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((method, path, self.headers.get("Authorization")))
                with hub.lock:
                    return hub.dispatch(self, method, path)

            def do_GET(self):
                self._route("GET")

            def do_HEAD(self):
                self._route("HEAD")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

        return Handler

    def dispatch(self, h, method: str, path: str):
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/repos/create":
            return self.create_repo(h)
        if method == "POST" and path == "/api/validate-yaml":
            return self.validate_yaml(h)
        if method == "GET" and path == "/api/whoami-v2":
            if not h._authorized():
                return h._json(401, {"error": "Invalid credentials in Authorization header"})
            return h._json(200, {"type": "user", "name": "org", "auth": {"accessToken": {"role": "write"}}})
        if method == "DELETE" and path == "/api/repos/delete":
            if not h._authorized():
                return h._json(401, {"error": "Invalid credentials in Authorization header"})
            body = json.loads(h._body())
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            if self.repos.pop(repo_id, None) is None:
                return h._json(404, {"error": "Repository not found"}, "RepoNotFound")
            return h._json(200, {})
        if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets"):
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            if parts[1] == "datasets":  # dataset repositories live under a "datasets/" prefix
                repo_id = f"datasets/{repo_id}"
            repo = self.repos.get(repo_id)
            if repo is None:
                return h._json(404, {"error": "Repository not found"}, "RepoNotFound")
            if method == "POST" and rest[:1] == ["preupload"]:
                return self.preupload(h)
            if method == "POST" and rest[:1] == ["commit"]:
                return self.commit(h, repo_id, repo, rest[1] if len(rest) > 1 else "main")
            if method == "GET" and (not rest or rest[0] == "revision"):
                return self.repo_info(h, repo_id, repo, rest[1] if len(rest) > 1 else "main")
            if method == "GET" and rest[:1] == ["tree"]:
                return self.tree(h, repo, rest[1] if len(rest) > 1 else "main", "/".join(rest[2:]))
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self.resolve(h, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), head=method == "HEAD")
        if len(parts) >= 6 and parts[0] == "datasets" and parts[3] == "resolve" and method in ("GET", "HEAD"):
            return self.resolve(h, "/".join(parts[:3]), parts[4], "/".join(parts[5:]), head=method == "HEAD")
        return h._json(404, {"error": f"no route for {method} {path}"})

    def create_repo(self, h):
        if not h._authorized():
            return h._json(401, {"error": "Invalid credentials in Authorization header"})
        body = json.loads(h._body())
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        if body.get("type") == "dataset":
            repo_id = f"datasets/{repo_id}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:
            return h._json(409, {"error": "You already created this model repo", "url": url})
        self.repos[repo_id] = Repo(commits=[(_sha(repo_id.encode()), {})], private=bool(body.get("private")))
        return h._json(200, {"url": url, "name": repo_id})

    def validate_yaml(self, h):
        """The README's YAML front matter must parse to a mapping (the Hub checks far more)."""
        content = json.loads(h._body())["content"]
        if not content.startswith("---\n"):
            return h._json(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            meta = yaml.safe_load(content[4:content.index("\n---", 4)])
        except (ValueError, yaml.YAMLError) as e:
            return h._json(400, {"errors": [{"message": f"invalid YAML: {e}"}]}, "BadRequest")
        if not isinstance(meta, dict):
            return h._json(400, {"errors": [{"message": "metadata must be a mapping"}]}, "BadRequest")
        self.validated.append(meta)
        return h._json(200, {"errors": [], "warnings": []})

    def preupload(self, h):
        if not h._authorized():
            return h._json(401, {"error": "Invalid credentials in Authorization header"})
        files = json.loads(h._body())["files"]
        return h._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                       for f in files]})

    def commit(self, h, repo_id: str, repo: Repo, revision: str):
        if not h._authorized():
            return h._json(401, {"error": "Invalid credentials in Authorization header"})
        head = repo.files(revision)
        if head is None:
            return h._json(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
        files = dict(head[1])
        summary = ""
        for line in h._body().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:
                return h._json(400, {"error": f"this test hub does not support {key!r} operations"})
        sha = _sha(json.dumps([head[0], summary, sorted((p, _sha(b)) for p, b in files.items())]).encode())
        repo.commits.append((sha, files))
        return h._json(200, {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{sha}", "commitOid": sha,
                             "pullRequestUrl": None})

    def repo_info(self, h, repo_id: str, repo: Repo, revision: str):
        found = repo.files(revision)
        if found is None:
            return h._json(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
        sha, files = found
        return h._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                             "siblings": [{"rfilename": p} for p in sorted(files)]})

    def tree(self, h, repo: Repo, revision: str, prefix: str):
        found = repo.files(revision)
        if found is None:
            return h._json(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
        base = prefix.rstrip("/") + "/" if prefix else ""
        entries, dirs = [], set()
        for p, data in sorted(found[1].items()):
            if not p.startswith(base):
                continue
            rest = p[len(base):]
            if "/" in rest:
                dirs.add(base + rest.split("/")[0])
            else:
                entries.append({"type": "file", "path": p, "size": len(data), "oid": _sha(data)})
        if not entries and not dirs:
            return h._json(404, {"error": f"{prefix} does not exist"}, "EntryNotFound")
        return h._json(200, [{"type": "directory", "path": d, "oid": _sha(d.encode())} for d in sorted(dirs)] + entries)

    def resolve(self, h, repo_id: str, revision: str, path: str, head: bool):
        repo = self.repos.get(repo_id)
        if repo is None:
            return h._json(404, {"error": "Repository not found"}, "RepoNotFound")
        found = repo.files(revision)
        if found is None:
            return h._json(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
        sha, files = found
        if path not in files:
            return h._send(404, b"Entry not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha},
                           head=head)
        data = files[path]
        return h._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{_sha(data)}"',
                                   "Content-Type": "application/octet-stream"}, head=head)
