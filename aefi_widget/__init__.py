"""aefi_widget: which input features does my autoencoder rely on?"""

from aefi_widget.result import ImportanceResult

__all__ = ["ImportanceResult"]
__version__ = "0.1.0"
