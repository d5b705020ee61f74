"""Hardware security modules through PKCS#11 (SoftHSM2 in development and tests)."""
