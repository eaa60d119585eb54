"""Typed models of every platform resource; the CRDs are generated from them."""
