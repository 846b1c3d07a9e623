"""Exit 0 when the tracking server answers; otherwise print one line that says so and exit 1.

A local store (no MLFLOW_TRACKING_URI, a file or a database URI) needs no check. For an http(s) server
any HTTP answer from <uri>/health counts as up; no answer within the timeout counts as down.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 10


def main() -> None:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_SECONDS).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        sys.exit(
            f"error: the tracking server {uri} does not answer ({reason}); nothing was run. "
            "Check that it is up, or point MLFLOW_TRACKING_URI elsewhere."
        )


if __name__ == "__main__":
    main()
