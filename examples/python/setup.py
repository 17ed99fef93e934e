"""The wheel carries native programs but no Python extension: any Python 3
loads the library through ctypes. Tagged py3-none-<platform>, the platform
(a manylinux tag) given by build_wheel.sh, which checked the binaries for it."""
import os

from setuptools import setup

try:  # setuptools >= 70.1
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools, with the wheel package
    from wheel.bdist_wheel import bdist_wheel


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False  # platlib: the package holds native files

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", os.environ.get("ENOS_WHEEL_PLATFORM") or platform


setup(cmdclass={"bdist_wheel": PlatformWheel})
