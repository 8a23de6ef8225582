# A template is imported by its name.
tofu import gtm_healthcheck.web web
