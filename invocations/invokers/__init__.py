"""Invokers call a function once and return a plain `InvokeResult`."""

from .base import InvokeRequest, InvokeResult
from .http import invoke_http

__all__ = ["InvokeRequest", "InvokeResult", "invoke_http"]
