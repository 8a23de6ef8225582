# An address's override is imported as POOL/ADDRESS.
tofu import gtm_address_mode.db_upgrade eu/192.0.2.10
