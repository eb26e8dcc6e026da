"""Runs the binding's unittest suite and prints, for make test, one line per test
("PASS name", "FAIL name: why", "SKIP name: why") and "N passed, N failed, N skipped".

The suite runs twice: with numpy, then in a child interpreter with numpy hidden before the
package is imported (--no-numpy), so that the memoryview paths run too: the package must
work without numpy. Other arguments select test modules (module or module.Class.test)."""

import importlib.abc
import os
import subprocess
import sys
import traceback
import unittest


class _NoNumpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("numpy hidden by run.py --no-numpy")
        return None


class _Result(unittest.TestResult):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}

    def _report(self, verdict, test, why=None, details=None):
        self.counts[verdict] += 1
        name = "%s/%s" % (self.mode, test.id().split(".", 1)[-1])
        print("%s %s%s" % (verdict, name, ": " + why if why else ""))
        if details:
            print("    " + details.rstrip().replace("\n", "\n    "))
        sys.stdout.flush()

    def addSuccess(self, test):
        self._report("PASS", test)

    def _failed(self, test, err):
        lines = traceback.format_exception_only(err[0], err[1])
        self._report("FAIL", test, lines[-1].strip(), "".join(traceback.format_exception(*err)))

    addFailure = addError = _failed

    def addSkip(self, test, reason):
        self._report("SKIP", test, reason)

    def addUnexpectedSuccess(self, test):
        self._report("FAIL", test, "unexpected success")

    def addExpectedFailure(self, test, err):
        self._report("PASS", test)


def _run(mode, names):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromNames(names) if names else loader.discover(here, "test_*.py")
    result = _Result(mode)
    suite.run(result)
    return result.counts


def _child_counts(argv):
    """Runs the memoryview pass in a fresh interpreter; its counts from its closing line."""
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--no-numpy"] + argv,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    lines = child.stdout.rstrip("\n").split("\n")
    words = lines[-1].split()
    if len(words) != 6 or words[1:6:2] != ["passed,", "failed,", "skipped"]:
        print("\n".join(lines))
        return {"PASS": 0, "FAIL": 1, "SKIP": 0}
    print("\n".join(lines[:-1]))
    return {"PASS": int(words[0]), "FAIL": int(words[2]), "SKIP": int(words[4])}


def main(argv):
    if "--no-numpy" in argv:
        sys.meta_path.insert(0, _NoNumpy())
        counts = _run("memoryview", [a for a in argv if a != "--no-numpy"])
    else:
        try:
            import numpy  # noqa: F401
        except ImportError:
            print("SKIP numpy: numpy is not importable (only the memoryview pass runs)")
            counts = {"PASS": 0, "FAIL": 0, "SKIP": 1}
        else:
            counts = _run("numpy", argv)
        sys.stdout.flush()
        for verdict, n in _child_counts(argv).items():
            counts[verdict] += n
    print("%d passed, %d failed, %d skipped" % (counts["PASS"], counts["FAIL"], counts["SKIP"]))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
