# A pool is imported by its name.
tofu import gtm_pool.eu eu
