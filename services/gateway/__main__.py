from lightwire.services.gateway.main import main

main()
