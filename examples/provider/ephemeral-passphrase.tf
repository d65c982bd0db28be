# The passphrase from an ephemeral variable (Terraform 1.10+): given at plan and apply time
# (TF_VAR_dr_passphrase, or -var), it is kept out of the saved plan file and the state.
# With older Terraform use DR_PASSPHRASE instead: a plain variable, even a sensitive one, is
# written into the saved plan file in clear.
variable "dr_passphrase" {
  type      = string
  sensitive = true
  ephemeral = true
}

provider "dr" {
  passphrase = var.dr_passphrase
  work_dir   = "/var/tmp/dr-drills"
}
