"""The numeric check: run the original layer under PyTorch and the migrated one under MindSpore.

torch and mindspore are imported lazily, only here (pip install 'torch2ms[verify]')."""
