"""Build the fused LSTM kernel for this machine once (a cluster node's setup step).

    python -m models.kernels

Prints the library's path; exit 1 with one line saying why when it cannot be built
(training then uses Keras's LSTM layers on this machine).
"""

import sys

from models.kernels import KernelBuildError, build


def main() -> int:
    try:
        print(build())
    except KernelBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
