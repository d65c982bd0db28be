# A region pair is imported by NAME@PRIMARY_VAULT_ID.
terraform import dr_region_pair.pipelines "pipelines@$(terraform output -raw primary_vault_id)"
