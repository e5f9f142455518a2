"""HTTP servers on 127.0.0.1 that tests start: static files with ranges, and the Hub's file API.

``LoopbackServer`` serves

- static files (``server.files["/path"] = bytes``) with ``Range`` support (206 + Content-Range),
  a one-shot cut (``server.cut["/path"] = n``: the next GET sends ``n`` bytes of a response that
  announces the full length, then drops the connection), and 404 for anything unknown;
- repositories in the Hugging Face Hub's layout (``server.add_commit(...)``): ``/api/models/<id>/
  revision/<rev>``, ``/api/models/<id>/tree/<rev>``, and ``HEAD``/``GET`` on
  ``/<id>/resolve/<rev>/<file>`` with the headers huggingface_hub reads (X-Repo-Commit, ETag,
  X-Linked-Etag/X-Linked-Size for large files), the same under ``/api/datasets`` and ``/datasets``.

Every request is logged in ``server.log`` as (method, path, headers), so a test can assert what
was (or was not) asked for.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

#: files at least this large are served like Git LFS files (sha256 etag), as the Hub does
LFS_THRESHOLD = 1024


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> str | None:
        if rev in self.commits:
            return rev
        return self.refs.get(rev)


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up early (xlbench stops reading a file of the wrong size) is normal
    here; socketserver would print its traceback to stderr, into the CLI output under test."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.repos: dict[tuple[str, str], Repo] = {}  # (kind "models"/"datasets", repo id) -> Repo
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_commit(
        self, repo_id: str, files: dict[str, bytes], *, commit: str | None = None, ref: str | None = "main",
        kind: str = "models",
    ) -> str:
        """Publish ``files`` as a new commit of ``repo_id``; ``ref`` (a branch) then points at it."""
        repo = self.repos.setdefault((kind, repo_id), Repo())
        commit = commit or hashlib.sha1(repr((repo_id, sorted(files.items()), len(repo.commits))).encode()).hexdigest()
        repo.commits[commit] = dict(files)
        if ref:
            repo.refs[ref] = commit
        return commit

    def requests_to(self, prefix: str) -> list[str]:
        with self._lock:
            return [f"{m} {p}" for m, p, _ in self.log if p.startswith(prefix)]

    # -- the handler ---------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _record(self) -> str:
                path = unquote(urlsplit(self.path).path)
                with server._lock:
                    server.log.append((self.command, path, dict(self.headers)))
                return path

            def do_HEAD(self) -> None:
                self._serve(self._record(), body=False)

            def do_GET(self) -> None:
                self._serve(self._record(), body=True)

            # -- responses ---------------------------------------------------------------------
            def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None, body: bool = True,
                      declared: int | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data) if declared is None else declared))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _json(self, obj: object) -> None:
                self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

            def _not_found(self, body: bool = True) -> None:
                self._send(404, b'{"error": "not found"}', {"Content-Type": "application/json",
                                                          "X-Error-Code": "EntryNotFound"}, body)

            def _bytes(self, path: str, data: bytes, extra: dict[str, str], body: bool) -> None:
                headers = {"Accept-Ranges": "bytes", **extra}
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                    if start >= len(data):
                        self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"}, body)
                        return
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                status = 206 if start else 200
                chunk = data[start:]
                cut = server.cut.pop(path, None) if body else None
                if cut is not None:  # announce everything, send a part, drop the connection
                    self._send(status, chunk[:cut], headers, body, declared=len(chunk))
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._send(status, chunk, headers, body)

            def _serve(self, path: str, body: bool) -> None:
                if path in server.files:
                    self._bytes(path, server.files[path], {}, body)
                    return
                parts = path.strip("/").split("/")
                if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets"):
                    what, rev = (parts[4], "/".join(parts[5:])) if len(parts) >= 6 else ("revision", "main")
                    self._api(parts[1], "/".join(parts[2:4]), what, rev)
                    return
                kind = "models"
                if parts[:1] == ["datasets"]:
                    kind, parts = "datasets", parts[1:]
                if len(parts) >= 5 and parts[2] == "resolve":
                    self._resolve(kind, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), body)
                    return
                self._not_found(body)

            def _api(self, kind: str, repo_id: str, what: str, rev: str) -> None:
                repo = server.repos.get((kind, repo_id))
                if repo is None:
                    self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
                    return
                commit = repo.resolve(rev)
                if commit is None:
                    self._send(404, b'{"error": "Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"})
                    return
                files = repo.commits[commit]
                if what == "revision":
                    self._json({"id": repo_id, "sha": commit, "private": False,
                                "siblings": [{"rfilename": name} for name in sorted(files)]})
                elif what == "tree":
                    entries = []
                    for name, data in sorted(files.items()):
                        entry = {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}
                        if len(data) >= LFS_THRESHOLD:
                            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                            "pointerSize": 134}
                        entries.append(entry)
                    self._json(entries)
                else:
                    self._not_found()

            def _resolve(self, kind: str, repo_id: str, rev: str, name: str, body: bool) -> None:
                repo = server.repos.get((kind, repo_id))
                commit = repo.resolve(rev) if repo else None
                if commit is None or name not in repo.commits[commit]:
                    self._not_found(body)
                    return
                data = repo.commits[commit][name]
                headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_id(data)}"'}
                if len(data) >= LFS_THRESHOLD:
                    headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                                    "X-Linked-Size": str(len(data))})
                self._bytes(f"/{repo_id}/{name}", data, headers, body)

        return Handler
