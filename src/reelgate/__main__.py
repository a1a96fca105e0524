from reelgate.cli import main

main()
