"""The wheel carries a native library: tag it for this platform, not py3-none-any."""
from setuptools import setup
from setuptools.dist import Distribution


class NativeDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(distclass=NativeDistribution)
