# A pin is imported by the domain's name.
tofu import gtm_pin.www www.gtm.example.net
