"""TensorRT: the backend (pycuda buffers), the on-device engine build and cache, and the int8 calibrator."""
