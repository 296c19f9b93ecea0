import os
import sys

from flux.forkserver import SOCKET_VARIABLE, run_in_server

if os.environ.get(SOCKET_VARIABLE):
    status = run_in_server(os.environ[SOCKET_VARIABLE], sys.argv)
    if status is not None:
        sys.exit(status)

from flux.cli import main  # noqa: E402 (not imported when the fork server runs the job)

sys.exit(main())
