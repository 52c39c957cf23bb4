using Microsoft.Extensions.Options;

namespace KestrelTcp.Configuration;

internal static class ValidatedOptions
{
    /// <summary>
    /// The options, or null when they are invalid. Parts of the host built before it starts (Kestrel's
    /// endpoints, host and transport options) use this so that invalid configuration surfaces once,
    /// from <c>ValidateOnStart</c>, with every problem listed, instead of as a crash while building.
    /// </summary>
    public static KestrelTcpOptions? ValueOrNull(this IOptions<KestrelTcpOptions> options)
    {
        try
        {
            return options.Value;
        }
        catch (OptionsValidationException)
        {
            return null;
        }
    }
}
