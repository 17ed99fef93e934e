"""The ``enos-token`` script: runs the command line the wheel carries."""
import os
import sys


def main() -> None:
    program = os.path.join(os.path.dirname(os.path.abspath(__file__)), "enos-token")
    if not os.path.exists(program):
        sys.exit(f"enos-token: the command line is not in this package ({program}); "
                 "install the wheel built by examples/python/build_wheel.sh")
    os.execv(program, [program, *sys.argv[1:]])


if __name__ == "__main__":
    main()
