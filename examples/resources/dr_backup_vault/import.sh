# A vault is imported by its URL (as written in the configuration, or its canonical id).
terraform import dr_backup_vault.primary vaults/eu-west-1
