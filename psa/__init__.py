"""Vendor backends for ConnectWise PSA, Autotask and HaloPSA behind one interface (base.py)."""
