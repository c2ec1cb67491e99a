"""Per-sensor encoders of the multi-sensor VLA family; importing a module registers its types."""
from . import imu  # noqa: F401
from . import proprio  # noqa: F401
from . import tactile  # noqa: F401
from . import pointcloud  # noqa: F401
from . import radar  # noqa: F401
from . import vision  # noqa: F401
from . import depth  # noqa: F401
