"""DAMO-YOLO (Apache-2.0 architecture) re-implemented from the deployment specification."""
from .configs import CONFIGS, DamoConfig, Stage, get_config
from .model import CheckpointError, DamoYolo, check_state_dict, from_state_dict, load_model, read_state_dict

__all__ = ["CONFIGS", "CheckpointError", "DamoConfig", "DamoYolo", "Stage", "check_state_dict", "from_state_dict",
           "get_config", "load_model", "read_state_dict"]
