# The main manifest of a node: include the classes its Hiera data lists (roles/ROLE.yaml and
# common.yaml, merged). Apply with the repository's modules and Hiera, e.g.
#   FACTER_role=web FACTER_app=shop FACTER_deploy_env=lab puppet apply \
#     --modulepath=puppet_modules --hiera_config=hiera/hiera.yaml --certname web1.lab examples/site.pp
lookup('classes', Array[String[1]], 'unique', []).include
