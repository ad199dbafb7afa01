"""The GPU check's first stage (scripts/gpu_check.sh runs it alone, with a short limit): the
package imports, the start-up hook is live, the demo model loads on CUDA, one SBS call runs.
If this fails the later tests are not started."""

from __future__ import annotations

import sys

import pytest
import torch
from gpu_helpers import policy, search


@pytest.mark.gpu
@pytest.mark.gpu_timeout(90)
def test_smoke_demo_model_on_cuda_one_sbs_call(demo, device, arith_questions, record_property):
    import lm_eval
    import transformers

    import svpo_harness

    # The .pth start-up hook ran in this interpreter: `lm_eval --model svpo` will find us.
    assert any(type(f).__name__ == "LmEvalWatcher" for f in sys.meta_path), sys.path
    record_property(
        "environment",
        {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "stand_in": device.type != "cuda",  # SVPO_GPU_TESTS_ON_CPU=1: not a GPU result
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "transformers": transformers.__version__,
            "lm_eval": getattr(lm_eval, "__version__", "?"),
            "svpo_harness": svpo_harness.__version__,
            "svpo_harness_file": svpo_harness.__file__,
        },
    )
    pol = policy(demo, device)
    assert pol.device.type == device.type and pol.value_head is not None
    assert next(pol.value_head.parameters()).device.type == device.type
    (result,), seconds = search(pol, "sbs", arith_questions[:1])
    assert result.text.strip() and result.value is not None and result.tokens_generated > 0
    record_property("sbs_seconds", round(seconds, 3))
