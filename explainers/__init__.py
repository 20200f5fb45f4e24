"""The explainers explbench ships; importing this package registers them all.

One module per family: :mod:`.lime` (lime, slime-time, slime-freq), :mod:`.kernelshap`,
:mod:`.gradients` (saliency, input-x-gradient, integrated-gradients, smoothgrad,
gradient-shap, deeplift), :mod:`.occlusion`, :mod:`.reference` (random, oracle-norm),
:mod:`.audiolime` (audiolime, audiolime-oracle).
"""

from . import audiolime, gradients, kernelshap, lime, occlusion, reference

__all__ = ["audiolime", "gradients", "kernelshap", "lime", "occlusion", "reference"]
