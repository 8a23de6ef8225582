# A pool mode is imported by the pool's name.
tofu import gtm_pool_mode.eu eu
