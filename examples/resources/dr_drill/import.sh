# A drill that has run is imported by NAME@VAULT_ID (the vault it restores from): its newest
# report in that vault gives the last run's results and the settings it ran with.
terraform import dr_drill.nightly "nightly@$(terraform output -raw standby_vault_id)"
