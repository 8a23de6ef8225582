# A domain is imported by its name (with or without the final dot).
tofu import gtm_domain.www www.gtm.example.net
