from lightwire.services.inference.main import main

main()
