"""edge: a lean runtime for YOLO11 and DAMO-YOLO detectors on embedded devices."""
from .detections import Detections
from .detector import Detector
from .errors import ContractError, EdgeError, ModelError, SinkError, SourceError
from .stream import stream

__version__ = "0.1.0"
__all__ = ["Detector", "Detections", "EdgeError", "ModelError", "ContractError", "SourceError", "SinkError", "stream",
           "__version__"]
