"""web/serve.mjs, the real server under node on 127.0.0.1, against hostile requests."""
import http.client
import os
import shutil
import subprocess
import threading

import pytest

from fer.edge.tfjs import WEB

from needs import APT_NODE, needs, node

pytestmark = needs(node(), f"needs node ({APT_NODE})")


@pytest.fixture
def site(tmp_path):
    """tmp/web/ (a copy of serve.mjs and a page), tmp/model/, and the sibling folders
    tmp/web-private/ and tmp/model-secret/ that must stay unreachable."""
    (tmp_path / "web").mkdir()
    shutil.copy(WEB / "serve.mjs", tmp_path / "web" / "serve.mjs")
    (tmp_path / "web" / "index.html").write_text("<p>page</p>")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text('{"format": "graph-model"}')
    (tmp_path / "model" / "shard.bin").write_bytes(os.urandom(3_000_000))
    # a file the kernel refuses to read (EIO on the first read), as a failing disk would
    (tmp_path / "model" / "broken.bin").symlink_to("/proc/self/mem")
    for secret in ("web-private/x", "model-secret/k.txt"):
        (tmp_path / secret).parent.mkdir()
        (tmp_path / secret).write_text("SECRET")
    proc = subprocess.Popen(["node", str(tmp_path / "web" / "serve.mjs"), "--model",
                             str(tmp_path / "model"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    try:
        assert line and "http://127.0.0.1:" in line[0], f"server did not start: {line}"
        port = int(line[0].split("http://127.0.0.1:")[1].split("/")[0])
        yield tmp_path, port, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def get(port, raw_path):
    """(status, body) for a request line sent exactly as given (no client normalisation);
    (None, error) when the connection fails or the body is cut."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", raw_path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}")
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, repr(e)
    finally:
        conn.close()


BAD = [
    ("/%E0%A4%A", 400),                              # malformed percent-encoding
    ("/model/%00.json", 400),                        # NUL byte
    ("/..%2Fweb-private/x", 404),                    # sibling of web/
    ("/model/..%2Fmodel-secret/k.txt", 404),         # sibling of the model folder
    ("/model/..%2F..%2Fweb-private/x", 404),
    ("/model/%2e%2e/model-secret/k.txt", 404),
    ("/..%2F..%2F..%2F..%2Fetc/hostname", 404),
    ("/model/", 404),                                # a folder, not a file
    ("/model/missing.bin", 404),
    ("/model/broken.bin", 500),                      # read error (EIO)
]


@pytest.mark.parametrize("raw,code", BAD)
def test_hostile_request_gets_an_error_and_the_server_keeps_serving(site, raw, code):
    tmp, port, proc = site
    status, body = get(port, raw)
    assert status == code, f"{raw}: got {status} {body!r}, expected {code}"
    assert b"SECRET" not in body
    assert proc.poll() is None                       # still running
    assert get(port, "/") == (200, b"<p>page</p>")
    assert get(port, "/model/model.json") == (200, b'{"format": "graph-model"}')
    status, body = get(port, "/model/shard.bin")     # large file: streamed whole
    assert status == 200 and body == (tmp / "model" / "shard.bin").read_bytes()
